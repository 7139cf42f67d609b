"""UdfSource on real UDF-only images, checked against 7-Zip, imported by ``kiosk import``.

The images are pycdlib UDF bridge images with their volume recognition sequence rewritten to
UDF alone (tests/sources/udf_images.py), and empty file systems made by mkudffs (udftools) in
the layouts real burners use. 7-Zip's UDF reader is the independent check: it must list the
same files and extract the same bytes as UdfSource. Crafted discs live in test_udf_crafted.py.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pycdlib
import pytest

from kiosk.errors import MediumRemovedError, SourceError, SourceReadError
from kiosk.service import KioskService
from kiosk.sources.iso import IsoSource
from kiosk.sources.opener import open_source
from kiosk.sources.source import Entry, EntryKind
from kiosk.sources.udf import UdfSource, UdfUnsupportedError
from kiosk.sources.udf_descriptors import Partition, UdfDamaged
from tests.sources.udf_images import (
    bridge_image,
    fe_at,
    fid_at,
    pydicom_files,
    retag,
    sample_disc_files,
    udf_only,
    udf_only_image,
    with_metadata_partition,
)

Cli = Callable[..., tuple[int, str, str]]


def _data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


#: Nested folders, 8-bit (ASCII, Latin-1) and 16-bit (Chinese) names, an empty file, a file
#: of many blocks with an odd size, names that differ only in case.
FILES: dict[str, bytes] = {
    "README.TXT": b"Hospital disc, open DICOMDIR\r\n",
    "Study One/Series_A/IM0001.dcm": _data(1, 70_001),
    "Study One/Series_A/im0001.dcm": _data(2, 4096),
    "Study One/Series_B/Deeper/Still/IM0002": _data(3, 1),
    "Study One/empty.dat": b"",
    "报告/检查报告.pdf": b"%PDF-1.4\n" + _data(4, 20_000),
    "Café/Résumé.txt": b"latin-1 names\n",
    "Big.bin": _data(5, 3 * 1024 * 1024 + 17),
}


def _read(src: UdfSource, path: str, chunk: int = 65_536) -> bytes:
    out = bytearray()
    with src.open(path) as f:
        while block := f.read(chunk):
            out += block
    return bytes(out)


def _7z_listing(image: Path) -> dict[str, int]:
    """Files (not folders) 7-Zip lists in ``image``, with their sizes."""
    run = subprocess.run(["7z", "l", "-slt", "-ba", str(image)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    found: dict[str, int] = {}
    for block in run.stdout.strip().split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if fields.get("Folder") == "-":
            found[fields["Path"]] = int(fields["Size"])
    return found


def _7z_bytes(image: Path, path: str) -> bytes:
    run = subprocess.run(["7z", "x", "-so", str(image), path], capture_output=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


need_7z = pytest.mark.skipif(shutil.which("7z") is None, reason="7z is not installed "
                             "(apt-get install p7zip-full)")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return udf_only_image(FILES, tmp_path_factory.mktemp("udf") / "disc.iso", label="CT Disc")


# ------------------------------------------------------------------------------ reading


def test_a_udf_only_image_is_refused_by_pycdlib_but_read_by_udf_source(image: Path) -> None:
    iso = pycdlib.PyCdlib()
    with pytest.raises(pycdlib.pycdlibexception.PyCdlibInvalidISO):
        iso.open(str(image))  # what made UDF-only discs unreadable before
    with UdfSource(image) as src:
        assert src.filesystem == "udf"
        assert src.label == "CT_DISC"
        assert src.description == str(image)
        listed = list(src.entries())
        assert [(e.path, e.size, e.kind) for e in listed] == [
            (p, len(FILES[p]), EntryKind.FILE) for p in sorted(FILES)]
        for path, data in FILES.items():
            assert _read(src, path) == data, path


def test_open_source_picks_udf_for_udf_only_and_iso_for_a_bridge(tmp_path: Path) -> None:
    bridge = bridge_image(FILES, tmp_path / "bridge.iso")
    src = open_source(bridge)
    assert isinstance(src, IsoSource) and src.filesystem == "iso9660"
    src.close()
    src = open_source(udf_only(bridge, tmp_path / "only.iso"))
    assert isinstance(src, UdfSource) and src.filesystem == "udf"
    assert src.is_present()
    src.close()


@need_7z
def test_7zip_lists_the_same_files_and_extracts_the_same_bytes(image: Path) -> None:
    with UdfSource(image) as src:
        ours = {e.path: e.size for e in src.entries() if e.kind is EntryKind.FILE}
        assert ours == _7z_listing(image)
        for path in ours:
            assert _read(src, path) == _7z_bytes(image, path), path


@need_7z
@pytest.mark.parametrize("extended", [False, True], ids=["file-entries", "extended-entries"])
def test_pydicom_test_files_and_their_dicomdir_read_as_7zip_reads_them(
        tmp_path: Path, extended: bool) -> None:
    files = pydicom_files()
    disc = udf_only_image(files, tmp_path / "pydicom.iso", extended=extended)
    with UdfSource(disc) as src:
        ours = {e.path: e.size for e in src.entries()}
        assert ours == _7z_listing(disc) == {p: len(d) for p, d in files.items()}
        assert "DICOMDIR" in ours and "Extra Images/CT_small.dcm" in ours
        for path in ("DICOMDIR", "Extra Images/MR_small.dcm", max(p for p in ours if p[0] == "7")):
            assert _read(src, path) == _7z_bytes(disc, path) == files[path]


def test_entries_carry_where_their_data_starts_on_the_disc(image: Path) -> None:
    raw = image.read_bytes()
    with UdfSource(image) as src:
        located = [e for e in src.entries() if e.size > 0]
        assert all(e.location is not None for e in located)
        for entry in located:
            assert entry.location is not None
            head = FILES[entry.path][:64]
            assert raw[entry.location : entry.location + len(head)] == head, entry.path
        assert len({e.location for e in located}) == len(located)
        empty = next(e for e in src.entries() if e.path == "Study One/empty.dat")
        assert empty.location is None


def test_max_depth_prunes_deep_folders_as_too_deep(image: Path) -> None:
    with UdfSource(image) as src:
        shallow = list(src.entries(max_depth=2))
    assert Entry("Study One/Series_B/Deeper", 0, EntryKind.TOO_DEEP) in shallow
    assert not any(e.path.startswith("Study One/Series_B/Deeper/") for e in shallow)
    assert any(e.path == "Study One/Series_A/IM0001.dcm" for e in shallow)


def test_symlinks_are_listed_and_never_followed(tmp_path: Path) -> None:
    disc = udf_only_image({"A/file": b"x"}, tmp_path / "links.iso",
                          symlinks={"passwd": "/etc/passwd", "A/up": "../A/file"})
    with UdfSource(disc) as src:
        assert list(src.entries()) == [Entry("A/file", 1, EntryKind.FILE, src._index["A/file"]
                                             .entry.location),
                                       Entry("A/up", 0, EntryKind.SYMLINK),
                                       Entry("passwd", 0, EntryKind.SYMLINK)]
        for link in ("passwd", "A/up"):
            with pytest.raises(SourceReadError, match="not a regular file"):
                src.open(link)
        with pytest.raises(SourceReadError, match="no such file"):
            src.open("A")


# --------------------------------------------------------------- descriptor variants


def test_embedded_data_long_and_unrecorded_extents_read_as_written(tmp_path: Path) -> None:
    """Forms pycdlib does not write, made by patching its file entries as other burners do."""
    data = bytearray(udf_only_image({"embedded.txt": b"E" * 100, "long.bin": _data(6, 5000),
                                     "hole.bin": _data(7, 4096)},
                                    tmp_path / "forms.iso").read_bytes())

    def entry(name: str) -> tuple[int, int]:
        fe = fe_at(data, fid_at(data, name))
        return fe, fe + 176 + struct.unpack_from("<I", data, fe + 168)[0]

    # Embedded: the bytes live in the file entry itself (ICB flags 3).
    fe, ads = entry("embedded.txt")
    struct.pack_into("<H", data, fe + 34, 3)
    struct.pack_into("<Q", data, fe + 56, 11)
    struct.pack_into("<I", data, fe + 172, 11)
    data[ads : ads + 11] = b"inside FE!!"
    retag(data, fe)
    # long_ad: the same extent with an explicit partition reference (ICB flags 1).
    fe, ads = entry("long.bin")
    length, block = struct.unpack_from("<II", data, ads)
    struct.pack_into("<H", data, fe + 34, 1)
    struct.pack_into("<I", data, fe + 172, 16)
    data[ads : ads + 16] = struct.pack("<IIH6x", length, block, 0)
    retag(data, fe)
    # Allocated but not recorded (extent type 1): reads as zeros.
    fe, ads = entry("hole.bin")
    length, = struct.unpack_from("<I", data, ads)
    struct.pack_into("<I", data, ads, length | 1 << 30)
    retag(data, fe)
    disc = tmp_path / "patched.iso"
    disc.write_bytes(bytes(data))
    with UdfSource(disc) as src:
        assert {e.path: e.size for e in src.entries()} == {
            "embedded.txt": 11, "hole.bin": 4096, "long.bin": 5000}
        assert _read(src, "embedded.txt") == b"inside FE!!"
        assert _read(src, "long.bin") == _data(6, 5000)
        assert _read(src, "hole.bin") == bytes(4096)
        with src.open("embedded.txt") as f:
            f.seek(7)
            assert f.read() == b"FE!!"
        embedded = src._index["embedded.txt"].entry
        assert embedded.location is not None
        assert data[embedded.location : embedded.location + 11] == b"inside FE!!"


@pytest.mark.parametrize("damage_main", [False, True], ids=["metadata-file", "its-mirror"])
def test_a_udf_250_metadata_partition_reads_the_same_files(image: Path, tmp_path: Path,
                                                           damage_main: bool) -> None:
    """Folders and file entries reached through the metadata file (else its mirror)."""
    data = with_metadata_partition(bytearray(image.read_bytes()), damage_main=damage_main)
    disc = tmp_path / "udf250.iso"
    disc.write_bytes(bytes(data))
    with UdfSource(disc) as src, UdfSource(image) as plain:
        assert [p.kind for p in src._volume.partitions] == ["physical", "metadata"]
        assert list(src.entries()) == list(plain.entries())
        for path, content in FILES.items():
            assert _read(src, path) == content, path


def test_metadata_and_sparable_partitions_map_blocks_where_their_tables_say() -> None:
    bs = 2048
    metadata = Partition("metadata", 0, 0, 0, bs, runs=((0, 1000, 4), (4, 500, 2)))
    assert metadata.runs_of(2, 4) == [(1002 * bs, 2 * bs), (500 * bs, 2 * bs)]
    with pytest.raises(UdfDamaged, match="outside the metadata file"):
        metadata.runs_of(5, 2)
    # Packet 64-95 was relocated to sector 5000 after a write error on a DVD-RW.
    spared = Partition("sparable", 0, 100, 1000, bs, packet=32, spared=((64, 5000),))
    assert spared.runs_of(60, 10) == [(160 * bs, 4 * bs), (5000 * bs, 6 * bs)]
    assert spared.runs_of(0, 8) == [(100 * bs, 8 * bs)]
    assert spared.runs_of(90, 10) == [(5026 * bs, 6 * bs), (196 * bs, 4 * bs)]
    with pytest.raises(UdfDamaged, match="outside partition"):
        spared.runs_of(995, 10)


def _mkudffs(tmp_path: Path, media: str, revision: str, block: int) -> Path:
    if shutil.which("mkudffs") is None:
        pytest.skip("mkudffs is not installed (apt-get install udftools)")
    out = tmp_path / f"mk-{media}-{revision}.img"
    with open(out, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    run = subprocess.run(["mkudffs", f"--media-type={media}", f"--udfrev={revision}",
                          f"--blocksize={block}", "--label=MKUDFFS", str(out)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return out


@pytest.mark.parametrize(("media", "revision", "block"), [
    ("hd", "0x0102", 2048),  # UDF 1.02, what Windows XP burns
    ("hd", "0x0201", 2048),  # UDF 2.01, Windows' default
    ("hd", "0x0201", 512),  # a stick or hard disk formatted UDF
    ("dvdrw", "0x0150", 2048),  # sparable partition, with its sparing table
])
def test_mkudffs_file_systems_open_empty(tmp_path: Path, media: str, revision: str,
                                         block: int) -> None:
    disc = _mkudffs(tmp_path, media, revision, block)
    src = open_source(disc)
    assert isinstance(src, UdfSource)
    assert src.label == "MKUDFFS"
    # The hidden "Non-Allocatable Space" of a rewritable disc is UDF's, not a file.
    assert list(src.entries()) == []


def test_a_virtual_partition_is_refused_with_what_to_ask_for(tmp_path: Path) -> None:
    disc = _mkudffs(tmp_path, "cdr", "0x0201", 2048)  # an unfinalised CD-R: VAT
    with pytest.raises(UdfUnsupportedError, match="virtual partition") as caught:
        open_source(disc)
    assert "finalised" in caught.value.text and "UDF" in caught.value.text


# ------------------------------------------------------------------ medium present/gone


def test_an_image_deleted_after_opening_is_a_removed_medium(tmp_path: Path) -> None:
    disc = udf_only_image(FILES, tmp_path / "gone.iso")
    with UdfSource(disc) as src:
        disc.unlink()
        assert not src.is_present()
        with pytest.raises(MediumRemovedError):
            src.open("README.TXT")


def test_another_disc_at_the_same_path_is_not_the_same_medium(tmp_path: Path) -> None:
    first = udf_only_image(FILES, tmp_path / "a.iso", label="FIRST")
    second = udf_only_image({"other": b"x"}, tmp_path / "b.iso", label="SECOND")
    with UdfSource(first) as src:
        os.replace(second, first)
        assert not src.is_present()
        with pytest.raises(MediumRemovedError):
            src.open("README.TXT")


def test_readers_outlive_the_closed_source_but_the_source_refuses_new_work(image: Path) -> None:
    src = UdfSource(image)
    reader = src.open("README.TXT")
    src.close()
    with reader:
        assert reader.read() == FILES["README.TXT"]
    with pytest.raises(ValueError, match="closed"):
        src.open("README.TXT")
    with pytest.raises(ValueError, match="closed"):
        list(src.entries())


def _failing_preadv(monkeypatch: pytest.MonkeyPatch, at: int, code: int) -> list[int]:
    """Make the kernel's ``preadv`` fail with ``code`` for reads at byte ``at`` of the disc.

    There is no dm-error target on these machines; this is where the kernel would say it.
    """
    real = os.preadv
    failed: list[int] = []

    def preadv(fd: int, buffers: list[Any], offset: int, *flags: int) -> int:
        if offset == at:
            failed.append(offset)
            raise OSError(code, os.strerror(code))
        return real(fd, buffers, offset, *flags)

    monkeypatch.setattr(os, "preadv", preadv)
    return failed


def test_eio_is_a_read_error_of_that_file_and_a_gone_medium_is_a_removed_one(
        image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with UdfSource(image) as src:
        entry = src._index["Study One/Series_A/IM0001.dcm"].entry
        assert entry.location is not None
        failed = _failing_preadv(monkeypatch, entry.location, errno.EIO)
        with pytest.raises(SourceReadError) as caught:
            _read(src, entry.path)
        assert failed and caught.value.errno == errno.EIO and src.is_present()
        assert _read(src, "README.TXT") == FILES["README.TXT"]  # one scratch, one file
        monkeypatch.undo()
        _failing_preadv(monkeypatch, entry.location, errno.ENOMEDIUM)
        with pytest.raises(MediumRemovedError):
            _read(src, entry.path)


def test_a_scratched_udf_disc_imports_everything_but_the_unreadable_file(
        image: Path, service: KioskService, monkeypatch: pytest.MonkeyPatch) -> None:
    files = sample_disc_files()
    disc = udf_only_image(files, image.parent / "scratched.iso")
    src = UdfSource(disc)
    dead = next(e for e in src.entries() if e.path.endswith("IM000001") and e.location)
    assert dead.location is not None
    _failing_preadv(monkeypatch, dead.location, errno.EIO)
    report = service.import_source(src)
    monkeypatch.undo()
    assert report["complete"] is True
    assert [r["path"] for r in report["rejected"]] == [dead.path]
    assert report["rejected"][0]["reason"].startswith("read error (EIO)")
    assert report["instances"]["found"] == report["instances"]["verified"] == 21


def test_a_file_that_is_neither_iso9660_nor_udf_keeps_its_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "random.iso"
    bad.write_bytes(_data(8, 600_000))
    with pytest.raises(SourceError, match="not an ISO9660 disc image"):
        open_source(bad)


# ------------------------------------------------------------------------ kiosk import


@pytest.fixture(scope="module")
def sample_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    files = sample_disc_files()
    disc = tmp_path_factory.mktemp("sample") / "fakecd-udf-sample.iso"
    return udf_only_image(files, disc, label="SZH SAMPLE"), files


def _dicom_count(files: dict[str, bytes]) -> int:
    """DICOM instances among ``files`` (the DICOMDIR is the file-set's index, not one)."""
    return sum(1 for path, data in files.items()
               if data[128:132] == b"DICM" and not path.endswith("DICOMDIR"))


def test_kiosk_import_of_a_udf_only_image_imports_and_verifies_everything(
        sample_image: tuple[Path, dict[str, bytes]], run_cli: Cli) -> None:
    disc, files = sample_image
    code, out, err = run_cli("import", str(disc), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["complete"] is True and report["error"] is None
    assert report["label"] == "SZH_SAMPLE"
    found = _dicom_count(files)
    assert report["instances"]["found"] == found == report["instances"]["verified"]
    assert report["dicomdir"]["records"] == found and report["dicomdir"]["missing"] == []
    assert report["rejected"] == []


def test_kiosk_import_of_a_bridge_image_still_goes_through_iso9660(
        sample_image: tuple[Path, dict[str, bytes]], tmp_path: Path, run_cli: Cli) -> None:
    _udf_only, files = sample_image
    disc = bridge_image(files, tmp_path / "bridge.iso", label="SZH SAMPLE")
    src = open_source(disc)
    assert isinstance(src, IsoSource) and src.naming == "joliet"
    with src, UdfSource(disc) as udf:  # the same names on both sides, as on a real bridge disc
        assert ([replace(e, location=None) for e in src.entries()]
                == [replace(e, location=None) for e in udf.entries()])
    code, out, err = run_cli("import", str(disc), "--json")
    assert code == 0, err
    report = json.loads(out)
    found = _dicom_count(files)
    assert report["instances"]["found"] == found == report["instances"]["verified"]
    assert report["dicomdir"]["missing"] == [] and report["rejected"] == []
