"""Synthetic hospital disc and bulk studies, checked with pydicom, dcmtk and dicom3tools."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from kiosk.dicom.names import decode_person_name
from kiosk.samples import bulk
from kiosk.samples.bulk import write_study
from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import SampleDisc, build_sample_disc

CT_SLICES = 4
SIZE = 32
NON_DICOM = {"AUTORUN.INF", "VIEWER/VIEWER.EXE", "REPORT/REPORT.PDF"}


@pytest.fixture(scope="module")
def disc(tmp_path_factory: pytest.TempPathFactory) -> SampleDisc:
    return build_sample_disc(
        tmp_path_factory.mktemp("disc") / "CDROM", ct_slices=CT_SLICES, size=SIZE
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _instance_paths(disc: SampleDisc) -> list[Path]:
    return sorted(p for p in disc.root.glob("PT*/ST*/SE*/IM*") if p.is_file())


def test_disc_layout(disc: SampleDisc) -> None:
    names = set(_files(disc.root))
    assert {"DICOMDIR", *NON_DICOM} <= names
    instances = _instance_paths(disc)
    assert disc.instances == CT_SLICES + 2 == len(instances)
    assert names == {"DICOMDIR", *NON_DICOM} | {
        p.relative_to(disc.root).as_posix() for p in instances
    }
    # Every path component is a valid DICOM File ID component.
    for p in instances:
        assert all(re.fullmatch(r"[A-Z0-9_]{1,8}", c) for c in p.relative_to(disc.root).parts)
    assert disc.report_pdf == disc.root / "REPORT" / "REPORT.PDF"
    assert disc.patient_id == "SZ20261127001"
    assert len(set(disc.study_uids)) == 2


def test_junk_files(disc: SampleDisc) -> None:
    exe = (disc.root / "VIEWER" / "VIEWER.EXE").read_bytes()
    assert exe.startswith(b"MZ") and 100 < len(exe) < 1024
    assert int.from_bytes(exe[0x3C:0x40], "little") == 0  # no PE header: not runnable
    autorun = (disc.root / "AUTORUN.INF").read_text("ascii")
    assert "[autorun]" in autorun and "open=VIEWER\\VIEWER.EXE" in autorun
    assert disc.report_pdf.read_bytes().startswith(b"%PDF-1.4")


def test_instances_read_back(disc: SampleDisc) -> None:
    seen_studies: dict[str, set[str]] = {}
    for path in _instance_paths(disc):
        ds = dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.SpecificCharacterSet == "GB18030"
        assert ds.PatientID == disc.patient_id
        raw = ds.get_item(0x00100010).value
        assert raw.rstrip(b" ") == "Li^Hua=李^华=".encode("gb18030")  # padded to even
        name = decode_person_name(raw, ds.SpecificCharacterSet)
        assert name.stored.split("=")[1] == "李^华"
        assert name.display == "Li Hua 李华" and name.warning is None
        assert ds.PatientName.ideographic == "李^华"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        seen_studies.setdefault(ds.StudyInstanceUID, set()).add(ds.Modality)
    assert seen_studies == {disc.study_uids[0]: {"CT"}, disc.study_uids[1]: {"CR"}}


def test_ct_has_real_pixels_and_geometry(disc: SampleDisc) -> None:
    ct = [dcmread(p) for p in _instance_paths(disc)]
    ct = sorted((ds for ds in ct if ds.Modality == "CT"), key=lambda ds: ds.InstanceNumber)
    hu = [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in ct]
    for image in hu:
        assert image.min() < -900 and image.max() > 400  # air and bone present
    assert len({image.tobytes() for image in hu}) == len(hu)  # slices differ
    z = [float(ds.ImagePositionPatient[2]) for ds in ct]
    assert z == sorted(z, reverse=True) and len(set(z)) == len(z)
    assert ct[0].Rows == ct[0].Columns == SIZE
    assert ct[0].PixelRepresentation == 1


def test_dicomdir_lists_exactly_the_instances(disc: SampleDisc) -> None:
    fs = FileSet(disc.root / "DICOMDIR")
    listed = {Path(inst.path).resolve() for inst in fs}
    assert listed == {p.resolve() for p in _instance_paths(disc)}
    assert len(fs) == disc.instances
    assert set(fs.find_values("StudyInstanceUID")) == set(disc.study_uids)
    assert fs.find_values("PatientID") == [disc.patient_id]


def test_deterministic(disc: SampleDisc, tmp_path: Path) -> None:
    again = build_sample_disc(tmp_path / "again", ct_slices=CT_SLICES, size=SIZE)
    assert again.study_uids == disc.study_uids
    assert _files(again.root) == _files(disc.root)
    other = build_sample_disc(tmp_path / "seed2", ct_slices=1, size=16, seed=2)
    assert set(other.study_uids).isdisjoint(disc.study_uids)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install dcmtk dicom3tools)")
    return path


def test_dcmftest_every_instance(disc: SampleDisc) -> None:
    dcmftest = _tool("dcmftest")
    files = [str(p) for p in _instance_paths(disc)] + [str(disc.root / "DICOMDIR")]
    out = subprocess.run([dcmftest, *files], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("yes: ") == len(files)


def test_dciodvfy_no_errors(disc: SampleDisc) -> None:
    dciodvfy = _tool("dciodvfy")
    by_modality = {dcmread(p, stop_before_pixels=True).Modality: p for p in _instance_paths(disc)}
    for path in (by_modality["CT"], by_modality["CR"], disc.root / "DICOMDIR"):
        # dciodvfy reports on stderr; judge by the "Error" lines, not the exit code.
        out = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        lines = (out.stdout + out.stderr).splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        assert not errors, f"{path}: {errors}"


def _check_xref(pdf: bytes) -> int:
    """Verify every xref entry points at "N 0 obj"; return the object count."""
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF$", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref")
    header = re.match(rb"xref\n0 (\d+)\n", pdf[startxref:])
    assert header is not None
    count = int(header.group(1))
    table = pdf[startxref + header.end() :]
    for number in range(count):
        entry = table[number * 20 : (number + 1) * 20]
        assert len(entry) == 20 and entry.endswith(b" \n")
        offset = int(entry[:10])
        if number == 0:
            assert entry == b"0000000000 65535 f \n"
        else:
            assert pdf[offset:].startswith(b"%d 0 obj" % number)
    return count - 1


def test_minimal_pdf_structure() -> None:
    pdf = minimal_pdf(["Radiology report", "Paren (test) and back\\slash", "Ünïcode 李华"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF")
    assert _check_xref(pdf) == 6
    length = int(re.search(rb"/Length (\d+) >>\nstream\n", pdf).group(1))
    stream = pdf.split(b"stream\n", 1)[1]
    assert stream[length:].startswith(b"endstream")
    assert b"(Paren \\(test\\) and back\\\\slash)" in pdf
    assert minimal_pdf(["a"]) == minimal_pdf(["a"])


def test_report_pdf_opens_in_ghostscript(disc: SampleDisc) -> None:
    # Ghostscript silently repairs bad xref offsets, so _check_xref is the
    # structural check; Ghostscript shows that a real reader gets the text out.
    _check_xref(disc.report_pdf.read_bytes())
    gs = _tool("gs")
    out = subprocess.run(
        [gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=txtwrite",
         "-sOutputFile=-", str(disc.report_pdf)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Radiology Report" in out.stdout and disc.patient_id in out.stdout
    assert "Error" not in out.stdout + out.stderr


def test_write_study_flat(tmp_path: Path) -> None:
    paths = write_study(tmp_path / "s", instances=5, rows=64, columns=64)
    assert [p.name for p in paths] == [f"IM0000{i}" for i in range(1, 6)]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [p.name for p in paths]
    datasets = [dcmread(p) for p in paths]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 5
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert [ds.InstanceNumber for ds in datasets] == [1, 2, 3, 4, 5]
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in datasets)
    assert all(ds.pixel_array.shape == (64, 64) for ds in datasets)
    assert len({ds.PixelData for ds in datasets}) == 5
    assert str(datasets[0].PatientName) == "TEST^BENCH" and datasets[0].PatientID == "BENCH001"
    # Deterministic: same arguments, same bytes.
    again = write_study(tmp_path / "t", instances=5, rows=64, columns=64)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_write_study_fast_path_equals_dcmwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the first instance goes through dcmwrite; the rest are spliced from
    # pre-encoded elements and must be byte-identical to what dcmwrite writes.
    calls = []
    real_dcmwrite = bulk.dcmwrite

    def counting_dcmwrite(*args: object, **kwargs: object) -> None:
        calls.append(args)
        real_dcmwrite(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk, "dcmwrite", counting_dcmwrite)
    for modality, name in (("CT", "TEST^BENCH"), ("CR", "王^小东")):
        calls.clear()
        paths = write_study(tmp_path / modality, instances=4, rows=16, columns=16,
                            modality=modality, patient_name=name)
        assert len(calls) == 1
        for path in paths:
            again = io.BytesIO()
            real_dcmwrite(again, dcmread(path), enforce_file_format=True)
            assert again.getvalue() == path.read_bytes()


def test_write_study_falls_back_to_dcmwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk._SplicedWriter, "matches", lambda *a: False)
    fallback = write_study(tmp_path / "slow", instances=3, rows=16, columns=16)
    monkeypatch.undo()
    fast = write_study(tmp_path / "fast", instances=3, rows=16, columns=16)
    assert [p.read_bytes() for p in fallback] == [p.read_bytes() for p in fast]


def test_write_study_options(tmp_path: Path) -> None:
    paths = write_study(
        tmp_path / "n", instances=2, rows=16, columns=24, modality="MR",
        patient_name="王^小东", patient_id="P2", seed=7, layout="nested",
    )
    assert paths[0] == tmp_path / "n" / "DICOM" / "ST000001" / "SE000001" / "IM00001"
    ds = dcmread(paths[1])
    assert (ds.Modality, ds.Rows, ds.Columns, ds.PatientID) == ("MR", 16, 24, "P2")
    assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == "王^小东"
    assert write_study(tmp_path / "empty", instances=0) == []
    with pytest.raises(ValueError, match="layout"):
        write_study(tmp_path / "x", instances=1, layout="spiral")


def test_write_study_dciodvfy(tmp_path: Path) -> None:
    dciodvfy = _tool("dciodvfy")
    for modality in ("CT", "MR", "CR", "OT"):
        path = write_study(tmp_path / modality, instances=1, rows=16, columns=16,
                           modality=modality)[0]
        out = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        errors = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, f"{modality}: {errors}"
