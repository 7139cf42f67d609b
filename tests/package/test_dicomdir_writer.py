"""Our one-pass DICOMDIR: the same records and File IDs pydicom's FileSet writes, loadable."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from kiosk.package.dicomdir_writer import layout, scan_instance, write_dicomdir
from kiosk.samples.sample_disc import build_sample_disc
from tests.conftest import PYDICOM_FILES, make_instance

KEYS = ("DirectoryRecordType", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
        "ReferencedFileID", "ReferencedSOPInstanceUIDInFile", "InstanceNumber", "Modality")


def _dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR"
                  and p.read_bytes()[128:132] == b"DICM")


def _headers(paths: list[Path]) -> list:
    return [dcmread(p, stop_before_pixels=True) for p in paths]


def _records(dicomdir: Path) -> list[tuple]:
    ds = dcmread(dicomdir)
    return [tuple(str(r.get(k, "")) for k in KEYS) for r in ds.DirectoryRecordSequence]


def test_records_and_file_ids_match_pydicom_filesets(tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=5, size=32)
    make_instance(tmp_path / "x" / "OTHER", patient_id="P2")  # a second patient
    paths = [*_dicom_files(disc.root), tmp_path / "x" / "OTHER"]
    ours = tmp_path / "ours"
    ours.mkdir()
    headers = _headers(paths)
    ids, tree = layout(headers)  # fills missing Type 1 record values in these header copies
    (ours / "DICOMDIR").write_bytes(write_dicomdir(tree))

    fs = FileSet()
    for ds in headers:
        fs.add(ds)
    fs.write(tmp_path / "theirs")
    assert _records(ours / "DICOMDIR") == _records(tmp_path / "theirs" / "DICOMDIR")
    expected = {i.SOPInstanceUID: Path(i.path).relative_to(tmp_path / "theirs").as_posix()
                for i in fs}
    assert dict(zip([d.SOPInstanceUID for d in headers], ids, strict=True)) == expected


def test_pydicom_loads_our_dicomdir_following_every_offset(tmp_path: Path) -> None:
    src = PYDICOM_FILES / "dicomdirtests"
    paths = [p for p in _dicom_files(src) if p.parent != src]
    headers = _headers(paths)
    ids, tree = layout(headers)
    root = tmp_path / "set"
    for path, file_id in zip(paths, ids, strict=True):
        (root / file_id).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / file_id)
    (root / "DICOMDIR").write_bytes(write_dicomdir(tree))
    fs = FileSet()
    fs.load(root / "DICOMDIR", raise_orphans=True)  # offsets wrong -> orphans -> raises
    assert sorted(i.SOPInstanceUID for i in fs) == sorted(h.SOPInstanceUID for h in headers)
    assert {Path(i.path).relative_to(root).as_posix() for i in fs} == set(ids)
    assert len({h.PatientID for h in headers}) == len(fs.find_values("PatientID"))


def test_an_empty_package_gives_an_empty_but_valid_dicomdir() -> None:
    _ids, tree = layout([])
    ds = dcmread(__import__("io").BytesIO(write_dicomdir(tree)))
    assert list(ds.DirectoryRecordSequence) == []
    assert ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity == 0


# --- the fast path: IMAGE records without pydicom, byte for byte the same -------------------------

_DIRECTORY_UID = "1.2.826.0.1.3680043.8.498.99"


def _pydicom_header(data: bytes) -> Dataset:
    return dcmread(io.BytesIO(data), stop_before_pixels=True, force=True, defer_size="64 KB")


def _both_ways(files: list[bytes]) -> tuple[object, object, int]:
    """(pydicom-only DICOMDIR, DICOMDIR with the fast path, instances on the fast path).

    Either DICOMDIR is the exception's type when building it raised.
    """
    def build(items: list) -> object:
        try:
            ids, tree = layout(items)
            return ids, write_dicomdir(tree, instance_uid=_DIRECTORY_UID)
        except Exception as exc:  # noqa: BLE001 - both paths must fail alike
            return type(exc)

    slow = build([_pydicom_header(d) for d in files])
    scanned = [scan_instance(d, complete=True, load=lambda d=d: _pydicom_header(d))
               for d in files]
    fast = build([s if s is not None else _pydicom_header(d)
                  for s, d in zip(scanned, files, strict=True)])
    return slow, fast, sum(s is not None for s in scanned)


def test_a_ct_study_takes_the_fast_path_and_gets_pydicoms_exact_bytes(tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "disc", ct_slices=7, size=32)
    make_instance(tmp_path / "x" / "OTHER", patient_id="P2", charset="ISO_IR 100")
    make_instance(tmp_path / "x" / "CHINESE", patient_id="P3", charset="GB18030",
                  patient_name="王^小东")
    files = [p.read_bytes() for p in [*_dicom_files(disc.root), *_dicom_files(tmp_path / "x")]]
    slow, fast, scanned = _both_ways(files)
    assert isinstance(slow, tuple) and slow == fast
    images = sum(1 for d in files if b"1.2.840.10008.5.1.4.1.1.104.1" not in d)  # not the PDF
    assert scanned == images  # every image instance was read without pydicom


def test_pydicoms_test_files_give_the_same_dicomdir_either_way() -> None:
    corpus = sorted(p for sub in ("test_files", "charset_files")
                    for p in (PYDICOM_FILES.parent / sub).rglob("*")
                    if p.is_file() and p.read_bytes()[128:132] == b"DICM")
    scanned_any = 0
    for path in corpus:
        slow, fast, scanned = _both_ways([path.read_bytes()])
        assert slow == fast, path
        scanned_any += scanned
    assert scanned_any > 20  # the fast path really ran on many of them
    # And one multi-patient set, in the order a disc lists it.
    dicomdir_set = [p.read_bytes() for p in _dicom_files(PYDICOM_FILES / "dicomdirtests")
                    if p.parent != PYDICOM_FILES / "dicomdirtests"]
    slow, fast, scanned = _both_ways(dicomdir_set)
    assert isinstance(slow, tuple) and slow == fast and scanned > 0


def _raw_instance(elements: dict[int, tuple[bytes, bytes]], syntax: bytes) -> bytes:
    """A Part 10 file from hand-encoded elements: values exactly as given, no normalising."""
    def element(tag: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value

    version = struct.pack("<HH2sHL", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1"  # 32-bit length
    meta_body = (version
                 + element(0x00020002, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0")
                 + element(0x00020003, b"UI", b"1.2.3.4\0")
                 + element(0x00020010, b"UI", syntax))
    meta = element(0x00020000, b"UL", struct.pack("<L", len(meta_body))) + meta_body
    body = b"".join(element(tag, vr, value) for tag, (vr, value) in sorted(elements.items()))
    pixels = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, 8) + b"\0" * 8
    return b"\0" * 128 + b"DICM" + meta + body + pixels


def _mostly(usual: list[bytes | None], odd: list[bytes | None]) -> st.SearchStrategy:
    """Usual values (the fast path takes them) four times as often as odd ones."""
    return st.sampled_from(usual * 4 + odd)


_padding = st.sampled_from([b"", b"", b"\0", b" ", b"  "])
_uids = _mostly([b"1.2.3", b"1.2.3.4", b"1.2.840.10008.5.1.4.1.1.2"], [b" 1.2.3", b"1.2.3 4"])


@st.composite
def _instances(draw: st.DrawFn) -> bytes:
    elements: dict[int, tuple[bytes, bytes]] = {}

    def put(tag: int, vr: bytes, value: bytes | None) -> None:
        if value is not None:
            elements[tag] = (vr, value)

    put(0x00080005, b"CS", draw(_mostly(
        [None, b"", b"ISO_IR 100", b"ISO_IR 192", b"\\ISO 2022 IR 58", b"GB18030 "],
        [b"iso_ir 100", b"ISO_IR 100\\GB18030", b"ISO_IR 100\0"])))
    put(0x00080016, b"UI", draw(_mostly(
        [b"1.2.840.10008.5.1.4.1.1.2\0", b"1.2.840.10008.5.1.4.1.1.7"],
        [b"1.2.840.10008.5.1.4.1.1.88.11\0", None])))
    put(0x00080018, b"UI", draw(_uids) + draw(_padding))
    put(0x00080020, b"DA", draw(st.sampled_from([None, b"", b"20261127"])))
    put(0x00080060, b"CS", draw(_mostly([None, b"", b"CT", b"MR "], [b"PLAN", b"CT\\MR", b"ot"])))
    put(0x00100010, b"PN", draw(st.sampled_from([None, b"", b"DOE^JOHN"])))
    put(0x00100020, b"LO", draw(_mostly(
        [None, b"", b"P1", b"P1 ", b"A B", b"UNKNOWN"], [b" P1", b"P\\2", b"\xe7\x8e\x8b"])))
    put(0x0020000D, b"UI", draw(_mostly([b"1.2.3", b"1.2.3.5\0", b"1.2.3.5 "], [None, b"1 .2"])))
    put(0x0020000E, b"UI", draw(_uids) + draw(_padding))
    put(0x00200011, b"IS", draw(st.sampled_from([None, b"", b"1", b"2 ", b" 3"])))
    put(0x00200013, b"IS", draw(_mostly(
        [None, b"", b"  ", b"1", b"12", b"012", b"7 ", b"8\0"], [b" 7", b"+4", b"-1", b"1.5",
                                                                 b"1\\2"])))
    syntax = draw(_mostly([b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.4.50\0",
                           b"1.2.840.10008.1.2.1 "], [b"1.2.840.10008.1.2\0"]))
    return _raw_instance(elements, syntax)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the odd values
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_instances(), min_size=1, max_size=4))
def test_any_mix_of_odd_values_gives_the_same_dicomdir_either_way(files: list[bytes]) -> None:
    slow, fast, _ = _both_ways(files)
    assert slow == fast


def test_values_the_fast_path_cannot_vouch_for_are_left_to_pydicom() -> None:
    base = {0x00080016: (b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"),
            0x00080018: (b"UI", b"1.2.3.4\0"), 0x0020000D: (b"UI", b"1.2.3.5\0"),
            0x0020000E: (b"UI", b"1.2.3.6\0"), 0x00200013: (b"IS", b"7 ")}
    syntax = b"1.2.840.10008.1.2.1\0"

    def scanned(**changes: tuple[int, bytes, bytes]) -> bool:
        elements = dict(base)
        for tag, vr, value in changes.values():
            elements[tag] = (vr, value)
        data = _raw_instance(elements, syntax)
        return scan_instance(data, complete=True, load=lambda: _pydicom_header(data)) is not None

    assert scanned()
    assert not scanned(n=(0x00200013, b"IS", b"+7"))  # pydicom keeps "+7"; not ours to say
    assert not scanned(p=(0x00100020, b"LO", "王".encode()))  # decoding needs the charset
    assert not scanned(m=(0x00080060, b"CS", b"RTRAD"))  # a RADIOTHERAPY record
    assert not scanned(e=(0x00420011, b"OB", b"%PDF"))  # an ENCAP DOC record
    assert not scanned(u=(0x0020000E, b"UI", b"1.2.3 .6"))  # a UID pydicom would warn about
    assert not scanned(v=(0x00080018, b"LO", b"1.2.3.4 "))  # an unexpected VR
    head = _raw_instance(base, syntax)[:300]  # the header continues past the bytes read
    assert scan_instance(head, complete=False, load=lambda: Dataset()) is None


def test_one_uid_in_several_encodings_gets_a_record_and_file_id_each(tmp_path: Path) -> None:
    # pydicom's own copies of MR_small in four transfer syntaxes: one SOP Instance UID.
    names = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
             "MR_small_bigendian.dcm"]
    items = []
    for name in names:
        data = (PYDICOM_FILES / name).read_bytes()
        path = PYDICOM_FILES / name
        scanned = scan_instance(data, complete=True,
                                load=lambda p=path: dcmread(p, stop_before_pixels=True))
        items.append(scanned or dcmread(path, stop_before_pixels=True))  # big endian: pydicom
    ids, tree = layout(items)
    assert len(set(ids)) == 4
    (tmp_path / "DICOMDIR").write_bytes(write_dicomdir(tree))
    images = [r for r in dcmread(tmp_path / "DICOMDIR").DirectoryRecordSequence
              if r.DirectoryRecordType == "IMAGE"]
    assert ["/".join(r.ReferencedFileID) for r in images] == ids
    assert len({r.ReferencedSOPInstanceUIDInFile for r in images}) == 1
    assert [r.ReferencedTransferSyntaxUIDInFile for r in images] == [
        str(dcmread(PYDICOM_FILES / n, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        for n in names]
    for name, file_id in zip(names, ids, strict=True):
        (tmp_path / file_id).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PYDICOM_FILES / name, tmp_path / file_id)
    loaded = FileSet(tmp_path / "DICOMDIR")  # pydicom loads all four, each with its syntax
    assert sorted(i.TransferSyntaxUID for i in loaded) == sorted(
        r.ReferencedTransferSyntaxUIDInFile for r in images)
