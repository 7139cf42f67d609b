"""AES-256 encrypted ZIP (WinZip AE-2) writer: checked with real 7-Zip and Python's zipfile.

Every archive here is opened by ``7z`` (p7zip-full) with the passphrase and extracted
byte-for-byte; structure is also parsed by :mod:`zipfile` (which lists AES entries but cannot
decrypt them). ZIP64 is exercised through a lowered threshold instead of writing 4 GiB.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import kiosk.package.aeszip as zc
import kiosk.package.aeszip.readback as device_readback
import kiosk.package.aeszip.reader as zip_reader
import kiosk.package.aeszip.volumes as zip_volumes
import kiosk.package.aeszip.winzip_aes as winzip_aes
import kiosk.package.aeszip.writer as zip_writer
from kiosk.errors import VerificationError
from kiosk.package.aeszip import (
    AesZipWriter,
    ArchiveCorruptError,
    ArchiveResult,
    SourceChangedError,
    WrongPassphraseError,
    default_split_size,
    read_back_sha256,
    verify_archive,
)
from kiosk.package.aeszip.format import MAC_LEN

SEVEN = shutil.which("7z")
needs_7z = pytest.mark.skipif(SEVEN is None, reason="7z not installed (apt-get install p7zip-full)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
PASS = "K7QM-X4TP-9WRD-HC3E"
MTIME = 1_700_000_000.0  # 2023-11-14T22:13:20Z, even seconds (DOS time has 2 s resolution)
BENCH = Path(__file__).resolve().parents[2] / "bench" / "zipcrypt.py"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run7z(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run 7z with a UTF-8 locale (so Chinese names extract as such); never raises."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    assert SEVEN is not None
    return subprocess.run(
        [SEVEN, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )


def assert_7z_ok(proc: subprocess.CompletedProcess[str]) -> None:
    """7z succeeded without a warning or an error of any kind."""
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Everything is Ok" in text, text
    assert not re.search(r"warning|error", text, re.I), text


def extract(volume: Path, dest: Path, password: str = PASS) -> dict[str, bytes]:
    """``7z x`` the archive into ``dest`` and return {relative path: bytes} of every file."""
    assert_7z_ok(run7z("x", "-y", f"-p{password}", f"-o{dest}", str(volume)))
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


@pytest.fixture
def payload(tmp_path: Path) -> dict[str, bytes]:
    """Files of every awkward shape: empty, tiny, 3 MiB, odd sizes, folders, a Chinese name."""
    rng = np.random.default_rng(7)
    return {
        "DICOMDIR": rng.bytes(12_345),
        "EMPTY": b"",
        "ONE": b"x",
        "EDGE": rng.bytes(980),  # with a ZIP64 limit of 1000: packed size needs ZIP64, size not
        "DICOM/ST000001/SE000001/IM000001": rng.bytes(3 << 20),
        "DICOM/ST000001/SE000001/IM000002": rng.bytes((1 << 20) + 17),
        "REPORTS/报告.pdf": b"%PDF-1.7\n" + rng.bytes(70_001),
        "REPORTS/report-en.pdf": b"%PDF-1.7\n" + rng.bytes(4_096),
        "MANIFEST.JSON": b'{"files": []}\n',
    }


def write_archive(
    dest: Path,
    files: dict[str, bytes],
    *,
    basename: str = "PATIENT",
    via_path: bool = True,
    **kwargs: object,
) -> ArchiveResult:
    """Archive ``files``: through real files on disk (add_file) or from memory (add_bytes)."""
    src = dest.parent / f"{dest.name}-src"
    with AesZipWriter(dest, basename, PASS, **kwargs) as writer:  # type: ignore[arg-type]
        for name, data in files.items():
            if via_path:
                path = src / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                os.utime(path, (MTIME, MTIME))
                writer.add_file(name, path)
            else:
                writer.add_bytes(name, data, mtime=MTIME)
        return writer.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "stick"
    d.mkdir()
    return d


# --- interoperability with 7-Zip ------------------------------------------------------------------


@needs_7z
@pytest.mark.parametrize("via_path", [True, False], ids=["add_file", "add_bytes"])
def test_7z_tests_and_extracts_every_file_byte_identical(
    out: Path, tmp_path: Path, payload: dict[str, bytes], via_path: bool
) -> None:
    result = write_archive(out, payload, via_path=via_path)
    assert result.volumes == [out / "PATIENT.zip"]
    assert sorted(p.name for p in out.iterdir()) == ["PATIENT.zip"]  # no .partial left
    assert result.entries == len(payload)
    assert result.bytes_in == sum(map(len, payload.values()))
    assert result.bytes_out == (out / "PATIENT.zip").stat().st_size
    assert result.verified  # read back from the device and checked

    assert_7z_ok(run7z("t", f"-p{PASS}", str(result.volumes[0])))

    extracted = extract(result.volumes[0], tmp_path / "x")
    assert extracted == payload
    # The UTC modification time travels in the extended-timestamp field.
    assert (tmp_path / "x" / "REPORTS" / "报告.pdf").stat().st_mtime == MTIME
    assert verify_archive(result.volumes, PASS) == {k: sha(v) for k, v in payload.items()}


@needs_7z
def test_7z_lists_every_entry_as_aes256_stored(out: Path, payload: dict[str, bytes]) -> None:
    result = write_archive(out, payload)
    listing = run7z("l", "-slt", f"-p{PASS}", str(result.volumes[0]))
    assert listing.returncode == 0, listing.stderr
    entries = listing.stdout.split("\n\n")
    blocks = [b for b in entries if re.search(r"^Path = (?!.*PATIENT\.zip$)", b, re.M)]
    paths = sorted(re.search(r"^Path = (.*)$", b, re.M).group(1) for b in blocks)  # type: ignore[union-attr]
    assert paths == sorted(payload)
    for block in blocks:
        assert re.search(r"^Method = AES-256 Store$", block, re.M), block
        assert re.search(r"^Encrypted = \+$", block, re.M), block
        assert "WzAES" in block, block


@needs_7z
def test_a_wrong_passphrase_fails_in_7z_and_in_verify_archive(
    out: Path, tmp_path: Path, payload: dict[str, bytes]
) -> None:
    result = write_archive(out, payload)
    tested = run7z("t", "-pWRONG-PASS", str(result.volumes[0]))
    assert tested.returncode != 0
    assert "Wrong password" in tested.stdout + tested.stderr
    extracted = run7z("x", "-y", "-pWRONG-PASS", f"-o{tmp_path / 'x'}", str(result.volumes[0]))
    assert extracted.returncode != 0
    with pytest.raises(WrongPassphraseError, match="passphrase does not open"):
        verify_archive(result.volumes, "WRONG-PASS")


@needs_7z
def test_verify_archive_reads_what_7zip_itself_wrote(tmp_path: Path) -> None:
    """Our reader against 7-Zip's writer: an independent check of the CTR, keys and MAC."""
    src = tmp_path / "src"
    (src / "SUB").mkdir(parents=True)
    files = {"a.bin": os.urandom(100_003), "SUB/b.bin": os.urandom(5_000_000), "c": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
    made = run7z("a", "-tzip", "-mem=AES256", "-mx=0", f"-p{PASS}", str(tmp_path / "7z.zip"),
                 "a.bin", "SUB/b.bin", "c", cwd=src)  # fmt: skip
    assert made.returncode == 0, made.stdout
    assert verify_archive([tmp_path / "7z.zip"], PASS) == {k: sha(v) for k, v in files.items()}
    with pytest.raises(WrongPassphraseError):
        verify_archive([tmp_path / "7z.zip"], "nope")


# --- split volumes --------------------------------------------------------------------------------


@needs_7z
@pytest.mark.parametrize("split", [1 << 20, 1_000_003], ids=["1MiB", "unaligned"])
def test_a_split_archive_opens_from_the_first_volume_and_respects_the_size(
    out: Path, tmp_path: Path, split: int
) -> None:
    rng = np.random.default_rng(11)
    files = {f"DICOM/IM{i:06d}": rng.bytes((5 << 19) + 1000 * i) for i in range(3)}  # ~2.5 MiB
    files["REPORTS/报告.pdf"] = rng.bytes(50_000)
    files["EMPTY"] = b""
    result = write_archive(out, files, split_size=split, chunk_size=256 << 10)

    names = [p.name for p in result.volumes]
    assert names == [f"PATIENT.zip.{i:03d}" for i in range(1, len(names) + 1)]
    assert len(names) >= 8
    assert sorted(p.name for p in out.iterdir()) == names  # nothing else, no .partial
    sizes = [p.stat().st_size for p in result.volumes]
    assert max(sizes) <= split
    assert all(s == split for s in sizes[:-1])
    assert sum(sizes) == result.bytes_out
    assert result.verified
    assert read_back_sha256(result.volumes) == [sha(p.read_bytes()) for p in result.volumes]

    assert extract(out / "PATIENT.zip.001", tmp_path / "x") == files
    assert verify_archive(result.volumes, PASS) == {k: sha(v) for k, v in files.items()}

    # The volumes concatenated are one ordinary archive.
    joined = tmp_path / "joined.zip"
    joined.write_bytes(b"".join(p.read_bytes() for p in result.volumes))
    with zipfile.ZipFile(joined) as zf:
        assert [i.filename for i in zf.infolist()] == list(files)


def test_a_mac_split_across_two_blocks_is_written_whole(out: Path, tmp_path: Path) -> None:
    """The 10-byte MAC of "A" ends 0..11 bytes past the first 64 KiB block: every split."""
    head = 30 + len("A") + 11 + 9 + 16 + 2  # local header, AES + time extras, salt, verifier
    for past in range(12):
        dest = tmp_path / f"split{past}"
        dest.mkdir()
        data = os.urandom((64 << 10) - head - MAC_LEN + past)
        result = write_archive(dest, {"A": data, "B": b"next"}, via_path=False,
                               chunk_size=64 << 10)
        assert result.verified
        assert verify_archive(result.volumes, PASS) == {"A": sha(data), "B": sha(b"next")}
        if past == 5 and SEVEN is not None:
            assert extract(result.volumes[0], tmp_path / "x") == {"A": data, "B": b"next"}


@needs_7z
def test_many_small_files_with_headers_straddling_block_and_volume_borders(
    out: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    files = {f"D{i % 7}/F{i:03d}": rng.bytes(int(rng.integers(0, 200_000))) for i in range(80)}
    result = write_archive(out, files, split_size=300_007, chunk_size=64 << 10, via_path=False)
    assert_7z_ok(run7z("t", f"-p{PASS}", str(result.volumes[0])))
    assert extract(result.volumes[0], tmp_path / "x") == files
    assert result.verified
    assert read_back_sha256(result.volumes) == [sha(p.read_bytes()) for p in result.volumes]
    assert verify_archive(result.volumes, PASS, chunk_size=4096) == {
        k: sha(v) for k, v in files.items()
    }


def test_an_archive_that_fits_one_volume_is_a_plain_zip(out: Path) -> None:
    result = write_archive(out, {"A": b"a" * 1000}, split_size=1 << 20, via_path=False)
    assert result.volumes == [out / "PATIENT.zip"]


def test_default_split_size_is_safe_for_fat32() -> None:
    size = default_split_size()
    assert (3 << 30) < size < zip_volumes.FAT32_MAX_FILE - (64 << 20)
    assert size % 4096 == 0


# --- integrity ------------------------------------------------------------------------------------


@needs_7z
def test_a_flipped_ciphertext_byte_fails_the_hmac(out: Path, payload: dict[str, bytes]) -> None:
    result = write_archive(out, payload)
    archive = result.volumes[0]
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("DICOM/ST000001/SE000001/IM000001")
    with archive.open("r+b") as fh:
        fh.seek(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 18 + 1000)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ArchiveCorruptError, match=r"IM000001.*integrity check") as err:
        verify_archive(result.volumes, PASS)
    assert isinstance(err.value, VerificationError) and err.value.exit_code == 4
    assert run7z("t", f"-p{PASS}", str(archive)).returncode != 0


def test_a_truncated_archive_is_reported(out: Path, payload: dict[str, bytes]) -> None:
    result = write_archive(out, payload, via_path=False)
    archive = result.volumes[0]
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveCorruptError):
        verify_archive(result.volumes, PASS)


def test_a_missing_split_volume_is_reported(out: Path) -> None:
    result = write_archive(out, {"A": os.urandom(3 << 20)}, split_size=1 << 20, via_path=False)
    result.volumes[1].unlink()
    with pytest.raises((ArchiveCorruptError, FileNotFoundError)):
        verify_archive(result.volumes, PASS)
    with pytest.raises(ArchiveCorruptError):
        verify_archive([result.volumes[0], *result.volumes[2:]], PASS)


# --- structure as Python's zipfile sees it --------------------------------------------------------


def test_zipfile_parses_the_structure(out: Path, payload: dict[str, bytes]) -> None:
    result = write_archive(out, payload)
    with zipfile.ZipFile(result.volumes[0]) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == list(payload)
        for info in infos:
            assert info.compress_type == 99
            assert info.file_size == len(payload[info.filename])
            assert info.compress_size == info.file_size + 28  # salt 16 + verifier 2 + MAC 10
            assert info.CRC == 0  # AE-2
            assert info.flag_bits & 0x1  # encrypted
            assert bool(info.flag_bits & 0x800) == (not info.filename.isascii())
            assert info.date_time == time.localtime(MTIME)[:6]
            assert info.extract_version == 51
            assert b"\x01\x99\x07\x00\x02\x00AE\x03\x00\x00" in info.extra  # AE-2, AES-256, stored


@needs_7z
@pytest.mark.parametrize("limit", [1000, 3], ids=["sizes-and-offsets", "everything"])
def test_zip64_records_when_the_threshold_is_crossed(
    out: Path, tmp_path: Path, payload: dict[str, bytes], limit: int
) -> None:
    result = write_archive(out, payload, zip64_limit=limit)
    archive = result.volumes[0]
    raw = archive.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw  # ZIP64 end record and locator
    with zipfile.ZipFile(archive) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert list(infos) == list(payload)
    for name, info in infos.items():
        assert info.file_size == len(payload[name])
        assert info.compress_size == len(payload[name]) + 28
    offsets = sorted(i.header_offset for i in infos.values())
    assert offsets[-1] > limit  # some offsets really went through the ZIP64 field
    listing = run7z("l", "-slt", f"-p{PASS}", str(archive))
    assert "Zip64" in listing.stdout
    assert_7z_ok(run7z("t", f"-p{PASS}", str(archive)))
    assert extract(archive, tmp_path / "x") == payload
    assert verify_archive(result.volumes, PASS) == {k: sha(v) for k, v in payload.items()}


# --- sources --------------------------------------------------------------------------------------


@needs_7z
def test_a_pipe_of_unknown_length_gets_a_zip64_data_descriptor(out: Path, tmp_path: Path) -> None:
    data = os.urandom((2 << 20) + 5)
    producer = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert producer.stdin is not None and producer.stdout is not None
    producer.stdin.write(data)
    producer.stdin.close()
    with AesZipWriter(out, "PIPE", PASS, chunk_size=256 << 10) as writer:
        writer.add_bytes("before", b"0123")
        writer.add_file("piped.bin", producer.stdout, mtime=MTIME)
        writer.add_bytes("after", b"4567")
        result = writer.close()
    producer.wait()
    with zipfile.ZipFile(result.volumes[0]) as zf:
        info = zf.getinfo("piped.bin")
        assert info.flag_bits & 0x8 and info.file_size == len(data)
    expected = {"before": b"0123", "piped.bin": data, "after": b"4567"}
    assert_7z_ok(run7z("t", f"-p{PASS}", str(result.volumes[0])))
    assert extract(result.volumes[0], tmp_path / "x") == expected
    assert verify_archive(result.volumes, PASS) == {k: sha(v) for k, v in expected.items()}


class _LyingFile(io.RawIOBase):
    """A seekable file whose claimed length differs from what it actually yields."""

    def __init__(self, data: bytes, claimed: int) -> None:
        self._data, self._claimed, self._pos = data, claimed, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._claimed + offset if whence == os.SEEK_END else offset
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self._pos : self._pos + len(b)]
        b[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize(
    ("actual", "claimed", "word"), [(1000, 5000, "shrank"), (5000, 1000, "grew")]
)
def test_a_source_that_changes_length_fails_the_export(
    out: Path, actual: int, claimed: int, word: str
) -> None:
    writer = AesZipWriter(out, "X", PASS)
    with pytest.raises(SourceChangedError, match=word):
        writer.add_file("f", _LyingFile(os.urandom(actual), claimed))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="failed"):
        writer.add_bytes("g", b"more")
    assert writer.abort() == []
    assert list(out.iterdir()) == []


def test_names_are_checked_and_a_rejected_name_leaves_the_writer_usable(out: Path) -> None:
    with AesZipWriter(out, "N", PASS) as writer:
        writer.add_bytes("REPORTS/a.pdf", b"a")
        for bad in ["", "/abs", "../up", "a/../b", "a//b", "a\\b", "dir/", "./a", "tab\there"]:
            with pytest.raises(ValueError):
                writer.add_bytes(bad, b"x")
        with pytest.raises(ValueError, match="duplicate"):
            writer.add_bytes("reports/A.PDF", b"b")  # same file once on FAT or NTFS
        with pytest.raises(FileNotFoundError):
            writer.add_file("missing", out / "does-not-exist")
        writer.add_bytes("REPORTS/b.pdf", b"b")
        result = writer.close()
    assert verify_archive(result.volumes, PASS).keys() == {"REPORTS/a.pdf", "REPORTS/b.pdf"}


def test_the_passphrase_must_be_printable_ascii(out: Path) -> None:
    for bad in ["", "pässword", "tab\tpass"]:
        with pytest.raises(ValueError, match="ASCII"):
            AesZipWriter(out, "P", bad)


# --- the patient's stick: never overwrite, clean up only our files, errors with errno -------------


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(directory).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def lived_in_stick(out: Path) -> Path:
    """A stick that already holds the patient's files, including zip-looking ones."""
    (out / "holiday.jpg").write_bytes(b"\xff\xd8 photo")
    (out / "OTHER.zip").write_bytes(b"PK someone else's archive")
    (out / "OTHER.zip.001").write_bytes(b"split")
    (out / "PATIENT.zip.999").write_bytes(b"not ours either")
    (out / "docs").mkdir()
    (out / "docs" / "PATIENT.zip").write_bytes(b"in a subfolder")
    return out


def test_abort_removes_only_the_volumes_it_created(lived_in_stick: Path) -> None:
    before = _snapshot(lived_in_stick)
    writer = AesZipWriter(lived_in_stick, "PATIENT", PASS, split_size=1 << 20, chunk_size=1 << 16)
    writer.add_bytes("A", os.urandom(3 << 20))
    created = {p.name for p in lived_in_stick.iterdir()} - {p.split("/")[0] for p in before}
    assert created and all(n.endswith(".partial") for n in created), created
    assert writer.abort() == []
    assert _snapshot(lived_in_stick) == before
    assert writer.abort() == []  # idempotent


def test_an_exception_in_the_with_block_aborts(lived_in_stick: Path) -> None:
    before = _snapshot(lived_in_stick)
    with pytest.raises(KeyError), AesZipWriter(lived_in_stick, "PATIENT", PASS) as writer:
        writer.add_bytes("A", os.urandom(1 << 20))
        raise KeyError("the export layer gave up")
    assert _snapshot(lived_in_stick) == before


def test_abort_after_close_removes_the_finished_volumes(lived_in_stick: Path) -> None:
    before = _snapshot(lived_in_stick)
    writer = AesZipWriter(lived_in_stick, "PATIENT", PASS, split_size=1 << 20)
    writer.add_bytes("A", os.urandom(3 << 20))
    result = writer.close()
    assert all(p.exists() for p in result.volumes)
    assert writer.abort() == []  # e.g. the read-back verification failed
    assert _snapshot(lived_in_stick) == before


def test_an_existing_archive_is_never_overwritten(out: Path) -> None:
    (out / "PATIENT.zip").write_bytes(b"patient's own")
    with pytest.raises(FileExistsError):
        AesZipWriter(out, "PATIENT", PASS)
    assert (out / "PATIENT.zip").read_bytes() == b"patient's own"
    (out / "P2.zip.001.partial").write_bytes(b"left by someone")
    writer = AesZipWriter(out, "P2", PASS)
    writer.add_bytes("A", b"a")
    with pytest.raises(FileExistsError):
        writer.close()  # the volume cannot be created exclusively
    writer.abort()
    assert (out / "P2.zip.001.partial").read_bytes() == b"left by someone"


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC, errno.EROFS])
def test_write_errors_surface_with_their_errno_and_abort_cleans_up(
    lived_in_stick: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    before = _snapshot(lived_in_stick)
    real_pwrite = os.pwrite
    written = 0

    def failing_pwrite(fd: int, data: memoryview, offset: int) -> int:
        nonlocal written
        if written > (1 << 20):
            raise OSError(code, os.strerror(code))
        written += len(data)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(zip_volumes.os, "pwrite", failing_pwrite)  # _VolumeFiles writes
    # The error surfaces in add_bytes or in close, whichever meets it first.
    with (
        pytest.raises(OSError) as err,
        AesZipWriter(lived_in_stick, "PATIENT", PASS, chunk_size=1 << 16) as writer,
    ):
        for i in range(8):
            writer.add_bytes(f"F{i}", os.urandom(1 << 19))
        writer.close()
    assert err.value.errno == code
    assert _snapshot(lived_in_stick) == before


@needs_root
def test_a_full_filesystem_raises_enospc_and_leaves_the_patients_files(small_stick: Path) -> None:
    (small_stick / "mine.txt").write_bytes(b"patient's own file")
    with (
        pytest.raises(OSError) as err,
        AesZipWriter(small_stick, "PATIENT", PASS, chunk_size=1 << 16) as writer,
    ):
        writer.add_bytes("BIG", os.urandom(4 << 20))
        writer.close()
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in small_stick.iterdir()) == ["mine.txt"]


@needs_root
def test_a_read_only_filesystem_raises_erofs(small_stick: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_stick)], check=True)
    with pytest.raises(OSError) as err, AesZipWriter(small_stick, "PATIENT", PASS) as writer:
        writer.add_bytes("A", b"a")
        writer.close()
    assert err.value.errno == errno.EROFS
    assert list(small_stick.iterdir()) == []


# --- read-back from the device -----------------------------------------------------------------


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("where", ["ciphertext", "local header"])
def test_a_byte_the_stick_changed_before_the_read_back_fails_close_and_nothing_is_left(
    lived_in_stick: Path, where: str
) -> None:
    before = _snapshot(lived_in_stick)
    rng = np.random.default_rng(9)
    with (
        pytest.raises(zc.ReadBackError, match="not what was written"),
        AesZipWriter(lived_in_stick, "PATIENT", PASS, chunk_size=1 << 16) as writer,
    ):
        for i in range(3):
            writer.add_bytes(f"IM{i}", rng.bytes(300_000))
        partial = lived_in_stick / "PATIENT.zip.001.partial"
        # Blocks already handed to the device (the last ones go at close); the segment (32 MiB)
        # is not full, so nothing was read back yet: change a byte "on the stick".
        _wait_for(lambda: partial.exists() and partial.stat().st_size >= 512 << 10,
                  "the first blocks")
        offset = 400_000 if where == "ciphertext" else 2  # the first local header's signature
        with open(partial, "r+b") as fh:
            fh.seek(offset)
            byte = fh.read(1)
            fh.seek(offset)
            fh.write(bytes([byte[0] ^ 0x40]))
        writer.close()
    assert _snapshot(lived_in_stick) == before  # aborted: the archive is gone


def test_segments_are_read_back_while_later_ones_are_written(out: Path) -> None:
    writer = AesZipWriter(out, "PATIENT", PASS, chunk_size=1 << 16, readback_segment=1 << 17)
    writer.add_bytes("A", os.urandom(2 << 20))
    readback = writer._output.readback
    assert readback is not None
    # Before close: the finished segments were synced, read back and checked already.
    _wait_for(lambda: readback.compared >= 1 << 20, "the read-back of the first segments")
    result = writer.close()
    assert result.verified
    assert readback.compared == result.bytes_out


def test_a_read_error_during_the_read_back_surfaces_with_its_errno(
    lived_in_stick: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(lived_in_stick)

    def failing_preadv(fd: int, buffers: list[memoryview], offset: int) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(device_readback.os, "preadv", failing_preadv)  # _pread_device reads
    with (
        pytest.raises(OSError) as err,
        AesZipWriter(lived_in_stick, "PATIENT", PASS, chunk_size=1 << 16) as writer,
    ):
        writer.add_bytes("A", os.urandom(1 << 20))
        writer.close()
    assert err.value.errno == errno.EIO
    assert _snapshot(lived_in_stick) == before


def test_the_read_back_comparison_sees_any_byte_at_any_alignment() -> None:
    rng = np.random.default_rng(8)
    data = rng.bytes(5000)
    for start, end in [(0, 5000), (3, 4099), (1, 9), (7, 8), (0, 0)]:
        a, b = memoryview(data)[start:end], memoryview(bytearray(data))[start:end]
        assert device_readback._same(a, b)
        for at in {0, len(a) // 2, len(a) - 1} if len(a) else set():
            b[at] ^= 0x80  # first, middle, last (in the 8-byte words or in the tail)
            assert not device_readback._same(a, b), (start, end, at)
            b[at] ^= 0x80
    assert not device_readback._same(memoryview(data)[:10], memoryview(data)[:11])


# --- keys derived ahead ---------------------------------------------------------------------------


@needs_7z
def test_keys_prepared_before_writing_make_an_archive_7z_opens_with_a_salt_per_entry(
    out: Path, tmp_path: Path
) -> None:
    supply = zc.KeySupply(PASS, prepare=6)  # derived by a child process
    assert supply._child is not None
    files = {f"F{i}": os.urandom(1000 + i) for i in range(10)}  # more entries than prepared
    with AesZipWriter(out, "PATIENT", PASS, keys=supply) as writer:
        for name, data in files.items():
            writer.add_bytes(name, data, mtime=MTIME)
        result = writer.close()
    assert result.verified and supply._child.owed == 0  # all six were used
    supply.close()
    assert extract(result.volumes[0], tmp_path / "x") == files
    reader = zip_volumes._SplitReader(result.volumes, drop_cache=False)
    try:
        salts = [zip_reader._plan_entry(reader, e).salt
                 for e in zip_reader._read_central_directory(reader)]
    finally:
        reader.close()
    assert len(set(salts)) == len(files)  # never a salt (so a keystream) twice


def test_a_key_supply_prepares_no_more_than_the_archive_needs() -> None:
    supply = zc.KeySupply(PASS, prepare=1000)
    supply.expect(3)  # the child is asked for 3 in all, whatever it was asked before
    assert supply._child is not None and supply._child.owed == 3
    assert all(supply.take() is not None for _ in range(3))
    started = time.monotonic()
    assert supply.take() is None  # nothing more owed: no wait, the writer derives its own
    assert time.monotonic() - started < winzip_aes._CHILD_WAIT
    supply.close()
    idle = zc.KeySupply(PASS, prepare=0)
    assert idle._thread is None and idle._child is None


def test_a_key_supply_for_another_passphrase_is_refused(out: Path) -> None:
    supply = zc.KeySupply("OTHER-PASS")
    with pytest.raises(ValueError, match="another passphrase"):
        AesZipWriter(out, "PATIENT", PASS, keys=supply)
    with pytest.raises(ValueError, match="printable ASCII"):
        zc.KeySupply("密码")
    assert list(out.iterdir()) == []


# --- internals worth pinning ----------------------------------------------------------------------


def test_the_public_api_stays_importable_from_zipcrypt() -> None:
    """The rest of the kiosk imports the AES zip from ``zipcrypt``: the modules' own objects."""
    assert sorted(zc.__all__) == sorted([
        "ZIP64_LIMIT", "AesZipWriter", "ArchiveCorruptError", "ArchiveResult", "EntryCheck",
        "KeySupply", "ReadBackError", "SourceChangedError", "WrongPassphraseError",
        "check_archive", "default_split_size", "read_back_sha256", "verify_archive",
    ])  # fmt: skip
    assert zc.AesZipWriter is zip_writer.AesZipWriter
    assert zc.KeySupply is winzip_aes.KeySupply
    assert zc.verify_archive is zip_reader.verify_archive
    assert zc.check_archive is zip_reader.check_archive
    assert zc.read_back_sha256 is device_readback.read_back_sha256
    assert zc.default_split_size is zip_volumes.default_split_size


def test_the_keystream_is_winzip_little_endian_ctr_at_any_offset() -> None:
    """Against a block-by-block reference: counter = LE uint64 in bytes 0-7, starting at 1."""
    key = bytes(range(32))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    blocks = [ecb.update(i.to_bytes(8, "little") + bytes(8)) for i in range(1, 400)]
    reference = b"".join(blocks)
    ctr = winzip_aes._WinZipCtr(4096)
    ctr.reset(key)
    rng = np.random.default_rng(3)
    for _ in range(200):
        pos = int(rng.integers(0, 2000))
        n = int(rng.integers(0, 2000))
        data = np.zeros(n, dtype=np.uint8)
        ctr.apply(data, pos)
        assert data.tobytes() == reference[pos : pos + n]


def test_key_derivation_matches_pbkdf2_hmac_sha1() -> None:
    salt = bytes(16)
    aes_key, mac_key, verifier = winzip_aes.derive_keys(b"password", salt)
    dk = hashlib.pbkdf2_hmac("sha1", b"password", salt, 1000, 66)
    assert (aes_key, mac_key, verifier) == (dk[:32], dk[32:64], dk[64:])


def test_memory_stays_bounded_for_a_large_file(tmp_path: Path) -> None:
    """Peak RSS grows by the block pools, not by the file: 384 MiB through a 1 MiB-block writer.

    The pools: two 16 MiB read-back segments of written blocks plus two, and three read-back
    blocks (37 MiB).
    """
    script = f"""
import io, resource, sys
from pathlib import Path
from kiosk.package.aeszip import AesZipWriter

class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n

w = AesZipWriter(Path({str(tmp_path)!r}), "BIG", "PASS-WORD", chunk_size=1 << 20)
w.add_bytes("warm-up", bytes(4 << 20))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
w.add_file("big", Zeros(384 << 20))
r = w.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak, r.bytes_in)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    base, peak, bytes_in = map(int, proc.stdout.split())
    assert bytes_in == (384 << 20) + (4 << 20)
    assert (peak - base) / 1024 < 48, (base, peak)  # KiB -> MiB


@pytest.mark.skipif(not BENCH.exists() or SEVEN is None, reason="bench script or 7z missing")
def test_quick_benchmark_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"^kiosk add_file \(read-back overlaps\)\s+\d+\.\d+", out, re.M), out
    assert re.search(r"^kiosk close \(fsync, last read-back\)\s+\d+\.\d+", out, re.M), out
    assert re.search(r"ratio kiosk write \+ read-back / 7z: \d+\.\d+", out), out
    assert "7z t of the kiosk archive: OK" in out, out


# --- the keystream -------------------------------------------------------------------------------


def _reference_ctr(key: bytes, data: bytes) -> bytes:
    """WinZip AES-CTR the slow, obvious way: one ECB call per 16-byte counter block."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = b"".join(ecb.update((i + 1).to_bytes(8, "little") + bytes(8))
                      for i in range((len(data) + 15) // 16))
    return bytes(x ^ y for x, y in zip(data, stream, strict=False))


def test_the_keystream_is_the_same_whatever_pieces_and_entries_it_is_cut_into() -> None:
    """Pieces inside the reused counter table, past it (the table moves) and back to 0."""
    rng = np.random.default_rng(21)
    ctr = winzip_aes._WinZipCtr(100)  # a table of 8 blocks: entries below cross it often
    for length in (1, 15, 16, 17, 99, 130, 700, 40):
        key = rng.bytes(32)
        data = rng.bytes(length)
        cuts = sorted({0, length, *map(int, rng.integers(0, length + 1, 6))})
        ctr.reset(key)
        got = bytearray()
        for start, end in itertools.pairwise(cuts):
            while start < end:  # pieces of at most max_len, as the writer cuts them
                piece = np.frombuffer(bytearray(data[start : min(end, start + 100)]), np.uint8)
                ctr.apply(piece, start)
                got += piece.tobytes()
                start += len(piece)
        assert bytes(got) == _reference_ctr(key, data), length
