"""IsoSource on real ISO9660 images (pycdlib, xorriso, genisoimage) and on a loop device.

No part of pycdlib is mocked: every image is a real file system, read back through the same
code path the kiosk uses for an ``.iso`` file or ``/dev/sr0``.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pycdlib
import pytest

from kiosk.errors import DiscTreeLimitError, MediumRemovedError, SourceError, SourceReadError
from kiosk.sources.iso import IsoSource
from kiosk.sources.opener import open_source
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Entry, EntryKind
from tests.sources.crafted_iso import files_past_the_end_iso


def _data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _read_all(source: IsoSource, path: str, chunk: int = 65536) -> bytes:
    out = bytearray()
    with source.open(path) as f:
        while block := f.read(chunk):
            out += block
    return bytes(out)


def _listed(source: IsoSource) -> list[Entry]:
    """What ``entries`` yields, without the locations (they have tests of their own)."""
    return [Entry(e.path, e.size, e.kind) for e in source.entries()]


def _write_iso(iso: pycdlib.PyCdlib, out: Path) -> Path:
    iso.write(str(out))
    iso.close()
    return out


def _add(
    iso: pycdlib.PyCdlib,
    data: bytes,
    iso_path: str,
    rr_name: str | None = None,
    joliet_path: str | None = None,
) -> None:
    iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=rr_name, joliet_path=joliet_path)


README = b"Hospital disc, open DICOMDIR\n"
IMAGE = _data(1, 70_001)  # odd size: the last block is partial


@pytest.fixture
def plain_iso(tmp_path: Path) -> Path:
    """Interchange level 1, neither Rock Ridge nor Joliet: 8.3 upper-case names only."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident="HOSPITAL_CD")
    _add(iso, README, "/README.TXT;1")
    _add(iso, b"DICOMDIR bytes", "/DICOMDIR.;1")
    iso.add_directory("/IMAGES")
    iso.add_directory("/IMAGES/SER1")
    _add(iso, IMAGE, "/IMAGES/SER1/IM0001.;1")
    _add(iso, b"", "/IMAGES/SER1/EMPTY.;1")
    return _write_iso(iso, tmp_path / "plain.iso")


@pytest.fixture
def joliet_iso(tmp_path: Path) -> Path:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, vol_ident="JOLIET")
    _add(iso, README, "/README.TXT;1", joliet_path="/ReadMe.txt")
    iso.add_directory("/IMAGES", joliet_path="/Images")
    _add(iso, IMAGE, "/IMAGES/IM0001.;1", joliet_path="/Images/Image 0001.dcm")
    return _write_iso(iso, tmp_path / "joliet.iso")


@pytest.fixture
def rr_iso(tmp_path: Path) -> Path:
    """Rock Ridge and Joliet, with a Rock Ridge symlink that points off the disc."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, rock_ridge="1.09", joliet=3, vol_ident="RR_DISC")
    _add(iso, README, "/README.TXT;1", rr_name="ReadMe.txt", joliet_path="/JolietReadMe.txt")
    iso.add_directory("/IMAGES", rr_name="Images", joliet_path="/JImages")
    _add(iso, IMAGE, "/IMAGES/IM0001.;1", rr_name="im0001.DCM", joliet_path="/JImages/j.dcm")
    iso.add_symlink(symlink_path="/PASSWD.;1", rr_symlink_name="passwd", rr_path="/etc/passwd")
    return _write_iso(iso, tmp_path / "rr.iso")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small directory tree for the external image builders."""
    root = tmp_path / "tree"
    (root / "Study" / "Series").mkdir(parents=True)
    (root / "ReadMe.txt").write_bytes(README)
    (root / "Study" / "Series" / "IM0001.dcm").write_bytes(IMAGE)
    (root / "Study" / "empty.dat").write_bytes(b"")
    return root


# --------------------------------------------------------------------------------- naming


def test_plain_iso9660_names_lose_version_and_trailing_dot_but_keep_case(plain_iso: Path) -> None:
    with IsoSource(plain_iso) as src:
        assert src.naming == "iso9660"
        assert _listed(src) == [
            Entry("DICOMDIR", 14, EntryKind.FILE),
            Entry("IMAGES/SER1/EMPTY", 0, EntryKind.FILE),
            Entry("IMAGES/SER1/IM0001", len(IMAGE), EntryKind.FILE),
            Entry("README.TXT", len(README), EntryKind.FILE),
        ]
        assert _read_all(src, "IMAGES/SER1/IM0001") == IMAGE
        assert _read_all(src, "IMAGES/SER1/EMPTY") == b""
        assert _read_all(src, "DICOMDIR") == b"DICOMDIR bytes"
        # The on-disc spelling with its version is not a second name for the file.
        with pytest.raises(SourceReadError):
            src.open("README.TXT;1")


def test_joliet_names_are_used_when_there_is_no_rock_ridge(joliet_iso: Path) -> None:
    with IsoSource(joliet_iso) as src:
        assert src.naming == "joliet"
        assert [(e.path, e.size) for e in src.entries()] == [
            ("Images/Image 0001.dcm", len(IMAGE)),
            ("ReadMe.txt", len(README)),
        ]
        assert _read_all(src, "Images/Image 0001.dcm") == IMAGE


def test_rock_ridge_names_win_over_joliet_and_symlinks_are_reported(rr_iso: Path) -> None:
    with IsoSource(rr_iso) as src:
        assert src.naming == "rockridge"
        assert _listed(src) == [
            Entry("Images/im0001.DCM", len(IMAGE), EntryKind.FILE),
            Entry("ReadMe.txt", len(README), EntryKind.FILE),
            Entry("passwd", 0, EntryKind.SYMLINK),
        ]
        assert _read_all(src, "Images/im0001.DCM") == IMAGE
        assert _read_all(src, "ReadMe.txt") == README


def test_rock_ridge_symlink_is_never_followed(rr_iso: Path) -> None:
    with IsoSource(rr_iso) as src, pytest.raises(SourceReadError, match="not a regular file"):
        src.open("passwd")


def test_label_is_the_stripped_volume_identifier(
    plain_iso: Path, rr_iso: Path, tmp_path: Path
) -> None:
    with IsoSource(plain_iso) as src:
        assert src.label == "HOSPITAL_CD"
        assert src.description == str(plain_iso)
    with IsoSource(rr_iso) as src:
        assert src.label == "RR_DISC"
    iso = pycdlib.PyCdlib()
    iso.new(vol_ident="")
    _add(iso, b"x", "/A.;1")
    with IsoSource(_write_iso(iso, tmp_path / "nolabel.iso")) as src:
        assert src.label is None


def test_open_source_dispatches_an_iso_file(rr_iso: Path) -> None:
    src = open_source(rr_iso)
    try:
        assert isinstance(src, IsoSource)
        assert src.is_present()
    finally:
        src.close()


def test_names_colliding_after_version_stripping_are_all_kept(tmp_path: Path) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1)
    _add(iso, b"version 1", "/DATA.;1")
    _add(iso, b"version 2", "/DATA.;2")
    with IsoSource(_write_iso(iso, tmp_path / "dup.iso")) as src:
        paths = [e.path for e in src.entries()]
        assert paths[0] == "DATA" and len(paths) == 2
        assert sorted(_read_all(src, p) for p in paths) == [b"version 1", b"version 2"]


# ------------------------------------------------------------------------ external builders


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso is not installed")
def test_xorriso_rock_ridge_image(tree: Path, tmp_path: Path) -> None:
    (tree / "outside").symlink_to("/etc/passwd")
    os.mkfifo(tree / "pipe")  # Rock Ridge records its mode: reported, never opened
    out = tmp_path / "xorriso.iso"
    _run(["xorriso", "-as", "mkisofs", "-R", "-V", "Xorriso Disc", "-o", str(out), str(tree)])
    with IsoSource(out) as src:
        assert src.naming == "rockridge"
        assert src.label == "Xorriso Disc"
        assert _listed(src) == [
            Entry("ReadMe.txt", len(README), EntryKind.FILE),
            Entry("Study/Series/IM0001.dcm", len(IMAGE), EntryKind.FILE),
            Entry("Study/empty.dat", 0, EntryKind.FILE),
            Entry("outside", 0, EntryKind.SYMLINK),
            Entry("pipe", 0, EntryKind.SPECIAL),
        ]
        assert _read_all(src, "Study/Series/IM0001.dcm", chunk=4096) == IMAGE
        for never_opened in ("outside", "pipe"):
            with pytest.raises(SourceReadError):
                src.open(never_opened)


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso is not installed")
def test_xorriso_relocated_deep_directories_appear_where_they_belong(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    deep = root.joinpath(*"abcdefghij")  # 10 levels: deeper than ISO9660's 8
    deep.mkdir(parents=True)
    (deep / "Deep.dcm").write_bytes(b"deep")
    out = tmp_path / "deep.iso"
    # Without -D, mkisofs emulation relocates directories below level 8 into rr_moved.
    _run(["xorriso", "-as", "mkisofs", "-R", "-o", str(out), str(root)])
    with IsoSource(out) as src:
        assert [e.path for e in src.entries()] == ["a/b/c/d/e/f/g/h/i/j/Deep.dcm"]
        assert _read_all(src, "a/b/c/d/e/f/g/h/i/j/Deep.dcm") == b"deep"


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="genisoimage is not installed")
def test_genisoimage_plain_image(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "geniso.iso"
    _run(["genisoimage", "-quiet", "-V", "GENISO", "-o", str(out), str(tree)])
    with IsoSource(out) as src:
        assert src.naming == "iso9660"
        assert src.label == "GENISO"
        assert _listed(src) == [
            Entry("README.TXT", len(README), EntryKind.FILE),
            Entry("STUDY/EMPTY.DAT", 0, EntryKind.FILE),
            Entry("STUDY/SERIES/IM0001.DCM", len(IMAGE), EntryKind.FILE),
        ]
        assert _read_all(src, "STUDY/SERIES/IM0001.DCM") == IMAGE


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="genisoimage is not installed")
def test_genisoimage_joliet_image(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "geniso-joliet.iso"
    _run(["genisoimage", "-quiet", "-J", "-o", str(out), str(tree)])
    with IsoSource(out) as src:
        assert src.naming == "joliet"
        assert [e.path for e in src.entries()] == [
            "ReadMe.txt",
            "Study/Series/IM0001.dcm",
            "Study/empty.dat",
        ]
        assert _read_all(src, "Study/Series/IM0001.dcm") == IMAGE


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "content",
    [_data(7, 100_000), b"", b"\x00" * 40_000, b"short"],
    ids=["random", "empty", "zeros", "short"],
)
def test_a_file_that_is_not_iso9660_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "not-a-disc.iso"
    bad.write_bytes(content)
    with pytest.raises(SourceError, match=r"not-a-disc\.iso"):
        IsoSource(bad)
    with pytest.raises(SourceError):
        open_source(bad)


def test_a_damaged_volume_descriptor_is_a_source_error(plain_iso: Path) -> None:
    data = bytearray(plain_iso.read_bytes())
    data[16 * 2048 + 128 : 16 * 2048 + 160] = b"\xff" * 32  # block size and path tables
    plain_iso.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="not an ISO9660 disc image"):
        IsoSource(plain_iso)


def test_a_missing_image_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        IsoSource(tmp_path / "nowhere.iso")


def test_a_truncated_image_gives_read_errors_only(tmp_path: Path) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, rock_ridge="1.09")
    files = {f"F{i}.DCM": _data(i, 300_000) for i in range(6)}
    for name, data in files.items():
        _add(iso, data, f"/{name};1", rr_name=name)
    image = _write_iso(iso, tmp_path / "cut.iso")
    full = image.stat().st_size
    os.truncate(image, full // 2)

    with IsoSource(image) as src:
        # The tree is at the front, so it lists; sizes are what the disc records (pycdlib
        # itself would shorten the files that run past the cut).
        assert [(e.path, e.size) for e in src.entries()] == [(n, 300_000) for n in sorted(files)]
        good, failed = 0, 0
        for name, data in files.items():
            try:
                assert _read_all(src, name) == data
                good += 1
            except (SourceReadError, MediumRemovedError):
                failed += 1
        assert good >= 1 and failed >= 1
        assert src.is_present()  # the file is still there: damage, not a pulled medium
        with pytest.raises(SourceReadError, match="ends before this file"):
            _read_all(src, max(files))


def test_an_image_deleted_after_opening_is_a_removed_medium(rr_iso: Path) -> None:
    with IsoSource(rr_iso) as src:
        assert src.is_present()
        rr_iso.unlink()
        assert not src.is_present()
        with pytest.raises(MediumRemovedError):
            src.open("ReadMe.txt")


def test_another_image_at_the_same_path_is_not_the_same_medium(
    rr_iso: Path, plain_iso: Path
) -> None:
    with IsoSource(rr_iso) as src:
        os.replace(plain_iso, rr_iso)
        assert not src.is_present()
        with pytest.raises(MediumRemovedError):
            src.open("ReadMe.txt")


# -------------------------------------------------------------------------------- readers


def test_reader_supports_readinto_seek_and_tell(rr_iso: Path) -> None:
    with IsoSource(rr_iso) as src, src.open("Images/im0001.DCM") as f:
        buf = bytearray(1000)
        assert cast(io.RawIOBase, f).readinto(buf) == 1000
        assert bytes(buf) == IMAGE[:1000]
        assert f.tell() == 1000
        assert f.seek(-10, os.SEEK_END) == len(IMAGE) - 10
        assert f.read() == IMAGE[-10:]
        assert f.read(5) == b""
        f.seek(65_530)
        assert f.read(12) == IMAGE[65_530:65_542]


def test_readers_outlive_the_closed_source_but_the_source_refuses_new_work(rr_iso: Path) -> None:
    src = IsoSource(rr_iso)
    reader = src.open("ReadMe.txt")
    src.close()
    src.close()  # idempotent
    with reader:
        assert reader.read() == README
    with pytest.raises(ValueError, match="closed"):
        src.open("ReadMe.txt")
    with pytest.raises(ValueError, match="closed"):
        list(src.entries())


# ------------------------------------------------------------------------- block devices


def _losetup_available() -> bool:
    return os.geteuid() == 0 and shutil.which("losetup") is not None


@pytest.fixture
def loop_device(rr_iso: Path) -> Iterator[tuple[str, list[bool]]]:
    """Attach ``rr_iso`` read-only; the list holds whether the test detached it already."""
    result = subprocess.run(
        ["losetup", "-f", "--show", "-r", str(rr_iso)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot attach a loop device here: {result.stderr.strip()}")
    device = result.stdout.strip()
    detached = [False]
    try:
        yield device, detached
    finally:
        if not detached[0]:
            subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)


def _wait_until_absent(src: IsoSource, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while src.is_present():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.root
@pytest.mark.skipif(not _losetup_available(), reason="needs root and losetup (loop devices)")
def test_block_device_read_then_detached(loop_device: tuple[str, list[bool]]) -> None:
    device, detached = loop_device
    src = open_source(device)
    try:
        assert isinstance(src, IsoSource)
        assert src.description == device
        assert src.label == "RR_DISC"
        assert [e.path for e in src.entries()] == ["Images/im0001.DCM", "ReadMe.txt", "passwd"]
        assert _read_all(src, "Images/im0001.DCM", chunk=3000) == IMAGE
        assert src.is_present()

        # A reader open during the detach keeps the loop device attached (the kernel defers
        # the detach to the last close), so it still reads the right bytes.
        reader = src.open("ReadMe.txt")
        subprocess.run(["losetup", "-d", device], check=True, capture_output=True, timeout=30)
        detached[0] = True
        try:
            assert reader.read() == README
        except (MediumRemovedError, SourceReadError):
            pass  # also acceptable: the medium went away under the reader
        finally:
            reader.close()

        assert _wait_until_absent(src), "a detached loop device still looks present"
        with pytest.raises((MediumRemovedError, SourceReadError)):
            _read_all(src, "ReadMe.txt")
        with pytest.raises(MediumRemovedError):
            src.open("Images/im0001.DCM")
    finally:
        src.close()


@pytest.mark.root
@pytest.mark.skipif(not _losetup_available(), reason="needs root and losetup (loop devices)")
def test_a_detached_loop_device_cannot_be_opened(loop_device: tuple[str, list[bool]]) -> None:
    device, detached = loop_device
    subprocess.run(["losetup", "-d", device], check=True, capture_output=True, timeout=30)
    detached[0] = True
    # A running udevd may still be probing the device after its attach event; the kernel then
    # defers the detach to udevd's close (as with any open reader). Wait for it to happen.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if os.lseek(fd, 0, os.SEEK_END) == 0:
                break
        finally:
            os.close(fd)
        time.sleep(0.05)
    with pytest.raises(SourceError, match="empty"):
        IsoSource(Path(device))


# ------------------------------------------------- files past the end of the image (issue 15)


def _bytes_read() -> int:
    """Bytes this process has read so far (``read``/``pread``, page cache included)."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


class _CountingClock:
    """A clock that moves one second every time it is read."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return float(self.readings)


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux /proc/self/io")
def test_files_running_past_the_end_of_the_image_are_indexed_in_one_pass(
        tmp_path: Path) -> None:
    # Each such file used to reread and rescan its folder's whole listing: 2,000 files read
    # the 90 KB listing 2,000 times (180 MB), and 8,000 took 32 s.
    image = files_past_the_end_iso(tmp_path / "past.iso", 2000)
    size = image.stat().st_size
    before = _bytes_read()
    with IsoSource(image) as src:
        read = _bytes_read() - before
        entries = list(src.entries())
    assert [e.size for e in entries] == [4096] * 2000  # the lengths the disc records
    # The census, pycdlib and the recorded lengths each read the listing once.
    assert read < 8 * size, (read, size)


def test_indexing_stops_at_the_time_limit(tmp_path: Path) -> None:
    small = files_past_the_end_iso(tmp_path / "small.iso", 100)
    big = files_past_the_end_iso(tmp_path / "big.iso", 4000)
    clock = _CountingClock()
    IsoSource(small, ScanLimits(max_seconds=1e6, clock=clock)).close()
    before_indexing = clock.readings  # counting and parsing one folder of the same shape
    # Time enough for that on the big disc, not for indexing its 4,000 files as well.
    limits = ScanLimits(max_seconds=before_indexing + 2, clock=_CountingClock())
    with pytest.raises(DiscTreeLimitError) as caught:
        IsoSource(big, limits)
    assert caught.value.limit == "max_seconds"
    assert "import.max_seconds" in caught.value.text
    with IsoSource(big) as src:  # the disc itself is fine: with time to spare it opens
        assert sum(1 for _ in src.entries()) == 4000


# -------------------------------------------------------------------- disc order (issue 15)


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso is not installed")
def test_file_locations_are_where_their_data_starts_not_the_directory_order(
        tmp_path: Path) -> None:
    root = tmp_path / "order"
    (root / "SUB").mkdir(parents=True)
    files = {f"IM{i:02d}.dcm": _data(10 + i, 3000 + 997 * i) for i in range(6)}
    files |= {f"SUB/S{i}.dcm": _data(20 + i, 5000 + i) for i in range(3)}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    (root / "empty.dat").write_bytes(b"")
    # Heavier files get lower blocks: later names first, and the sub-folder before the root's.
    weights = [w for n, rel in enumerate(sorted(files))
               for w in ("--sort-weight", str(100 + n), "/" + rel)]
    out = tmp_path / "order.iso"
    _run(["xorriso", "-as", "mkisofs", "-R", *weights, "-o", str(out), str(root)])
    report = subprocess.run(["xorriso", "-indev", str(out), "-find", "/", "-type", "f", "-exec",
                             "report_lba", "--"], capture_output=True, text=True, timeout=60)
    # xorriso's own account: "File data lba: 0 , START , BLOCKS , SIZE , '/PATH'".
    lba = {line.rsplit("'", 2)[1][1:]: int(line.split(",")[1])
           for line in report.stdout.splitlines() + report.stderr.splitlines()
           if line.startswith("File data lba:")}
    assert set(lba) == {*files, "empty.dat"}

    with IsoSource(out) as src:
        entries = [e for e in src.entries() if e.kind is EntryKind.FILE]
    assert all(e.location is not None for e in entries)  # the empty file's too
    located = {e.path: e.location for e in entries if e.size}
    assert located == {rel: start * 2048 for rel, start in lba.items() if rel in files}
    listed = [e.path for e in entries if e.size]
    assert sorted(listed, key=located.__getitem__) == sorted(files, reverse=True)
    assert listed != sorted(listed, key=located.__getitem__)  # the two orders differ
    image = out.read_bytes()
    for e in entries:
        assert e.location is not None
        assert image[e.location : e.location + e.size] == files.get(e.path, b"")
