"""Faulty media (DESIGN.md §5): scratched discs, media pulled mid-import, huge trees, symlinks.

Read errors are injected with small wrapper sources where the kernel cannot produce them here
(no dm-error target on these VMs); a pulled medium is real (the directory goes away, the loop
device is detached) and so is the ISO reader hitting EIO (``preadv`` fails).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pydicom
import pytest

import kiosk.sources.iso
from kiosk.cli.main import import_exit_code
from kiosk.ingest.importer import ImportProgress
from kiosk.samples.bulk import write_study
from kiosk.service import KioskService
from kiosk.sources.directory import DirectorySource
from kiosk.sources.iso import IsoSource
from kiosk.sources.source import MAX_DEPTH, Entry

# --------------------------------------------------------------------------------- helpers


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _case_rows(service: KioskService, case_id: str) -> list[Any]:
    return [r for s in service.catalog.studies(case_id) for r in service.catalog.manifest(s)]


def _assert_rows_whole(service: KioskService, rows: list[Any]) -> None:
    """Every row's blob is stored and its bytes hash to the recorded SHA-256."""
    for row in rows:
        assert row.verified, f"{row.source_path}: {row.problem}"
        assert _sha(service.store.read_bytes(row.sha256)) == row.sha256


def _job_state(service: KioskService, job_id: str) -> str:
    job = service.catalog.job(job_id)
    assert job is not None, f"job {job_id} not recorded"
    return str(job["state"])


def _case_status(service: KioskService, case_id: str) -> str:
    case = service.catalog.case(case_id)
    assert case is not None, f"case {case_id} not recorded"
    return str(case["status"])


class _FaultyFile:
    """A file on a scratched disc: ``read`` raises EIO while ``fail`` says so."""

    def __init__(self, inner: BinaryIO, fail: Callable[[int], bool]) -> None:
        self._inner = inner
        self._fail = fail
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self._fail(self.reads):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._inner.read(n)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _FaultyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScratchedDisc:
    """A :class:`DirectorySource` whose chosen files fail reads with EIO.

    ``faults`` maps a path to a predicate on the 1-based read number: True means that read
    fails. Every read attempt and every EIO raised is counted per path.
    """

    def __init__(self, inner: DirectorySource, faults: dict[str, Callable[[int], bool]]) -> None:
        self.inner = inner
        self.description = inner.description
        self.filesystem = inner.filesystem
        self.label = inner.label
        self.faults = faults
        self.eio: dict[str, int] = {}

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        return self.inner.entries(max_depth)

    def open(self, path: str) -> BinaryIO:
        fh = self.inner.open(path)
        fail = self.faults.get(path)
        if fail is None:
            return fh

        def counted(n: int) -> bool:
            if fail(n):
                self.eio[path] = self.eio.get(path, 0) + 1
                return True
            return False

        return cast(BinaryIO, _FaultyFile(fh, counted))

    def is_present(self) -> bool:
        return self.inner.is_present()

    def close(self) -> None:
        self.inner.close()


class PulledMidImport:
    """A :class:`DirectorySource` that is really pulled (renamed away) at the n-th open."""

    def __init__(self, inner: DirectorySource, pull_at_open: int, away: Path) -> None:
        self.inner = inner
        self.description = inner.description
        self.filesystem = inner.filesystem
        self.label = inner.label
        self.pull_at_open = pull_at_open
        self.away = away
        self.opened: list[str] = []
        self._opens = 0
        self._lock = threading.Lock()

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        return self.inner.entries(max_depth)

    def open(self, path: str) -> BinaryIO:
        # Serialised, so "opened before the pull" is exact even with parallel workers.
        with self._lock:
            self._opens += 1
            if self._opens == self.pull_at_open:
                self.inner.root.rename(self.away)
            fh = self.inner.open(path)
            self.opened.append(path)
            return fh

    def is_present(self) -> bool:
        return self.inner.is_present()

    def close(self) -> None:
        self.inner.close()


# ------------------------------------------------------------------------- scratched disc


@pytest.fixture
def disc(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A small hospital disc: 12 CT images in one series."""
    root = tmp_path / "HOSPITAL_CD"
    return root, write_study(root, instances=12, rows=64, columns=64, layout="nested")


def test_a_scratched_disc_still_imports_the_readable_files(
    service: KioskService, disc: tuple[Path, list[Path]]
) -> None:
    root, files = disc
    rel = [str(p.relative_to(root)) for p in files]
    dead, flaky, dies_late = rel[2], rel[6], rel[9]
    retries = service.importer.options.read_retries
    assert retries >= 2
    source = ScratchedDisc(DirectorySource(root), {
        dead: lambda n: True,  # a bad sector under the whole file
        flaky: lambda n: n <= 2,  # reads again on the third try
        dies_late: lambda n: n >= 2,  # first chunk reads, the rest never does
    })

    report = service.import_source(source)

    assert report["complete"] is True
    assert report["error"] is None
    rejected = {r["path"]: r["reason"] for r in report["rejected"]}
    assert set(rejected) == {dead, dies_late}
    for path in (dead, dies_late):
        assert "read error (EIO)" in rejected[path]
        assert "scratched" in rejected[path]
    assert "at byte 0" in rejected[dead]
    assert f"at byte {files[9].stat().st_size}" in rejected[dies_late]
    # Retried as configured before giving up; the flaky file got its third try.
    assert source.eio[dead] == retries + 1
    assert source.eio[flaky] == 2

    good = [p for p in files if str(p.relative_to(root)) not in rejected]
    assert report["instances"] == {"found": 10, "imported": 10, "duplicates": 0,
                                   "verified": 10}
    assert report["verification"]["problems"] == []
    rows = _case_rows(service, report["case_id"])
    _assert_rows_whole(service, rows)
    assert {r.source_path: r.sha256 for r in rows} == {
        str(p.relative_to(root)): _sha(p.read_bytes()) for p in good}
    # The half-read copy of the file that died after its first chunk is nowhere in the store.
    assert not service.store.has(_sha(files[9].read_bytes()))
    assert not service.store.has(_sha(files[2].read_bytes()))
    assert service.store.leftovers() == []

    # Decision (kiosk.cli.main.import_exit_code): unreadable files are reported in `rejected`, but
    # everything that *was* read is stored and verified, so the import itself succeeded.
    assert import_exit_code(report) == 0
    assert _job_state(service, report["job_id"]) == "complete"
    assert _case_status(service, report["case_id"]) == "complete"


def _build_iso(tree: Path, out: Path, label: str) -> Path:
    if shutil.which("xorriso") is None:
        pytest.skip("xorriso is not installed (apt-get install xorriso)")
    subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-V", label, "-o", str(out), str(tree)],
                   check=True, capture_output=True, timeout=120)
    return out


def test_a_scratched_cd_image_is_retried_at_the_sector_level(
    service: KioskService, disc: tuple[Path, list[Path]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EIO from the real ISO reader (``preadv`` on the image) is retried like a directory's."""
    root, files = disc
    image = _build_iso(root, tmp_path / "scratched.iso", "SCRATCHED")
    blob = image.read_bytes()
    dead_at, flaky_at = blob.index(files[2].read_bytes()), blob.index(files[6].read_bytes())
    failures = {dead_at: 0, flaky_at: 0}
    real_preadv = os.preadv
    lock = threading.Lock()

    def preadv(fd: int, buffers: list[Any], offset: int, *flags: int) -> int:
        with lock:
            if offset in failures:
                failures[offset] += 1
                if offset == dead_at or failures[offset] <= 2:
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_preadv(fd, buffers, offset, *flags)

    source = IsoSource(image)
    monkeypatch.setattr(kiosk.sources.iso.os, "preadv", preadv)
    report = service.import_source(source)
    monkeypatch.undo()

    assert report["complete"] is True
    rejected = {r["path"]: r["reason"] for r in report["rejected"]}
    dead = str(files[2].relative_to(root))
    assert set(rejected) == {dead}
    assert "EIO" in rejected[dead]
    retries = service.importer.options.read_retries
    assert failures[dead_at] == retries + 1, "a bad sector on a CD must be retried"
    assert failures[flaky_at] == 3
    assert report["instances"]["found"] == report["instances"]["verified"] == 11
    rows = _case_rows(service, report["case_id"])
    _assert_rows_whole(service, rows)
    assert str(files[6].relative_to(root)) in {r.source_path for r in rows}
    assert import_exit_code(report) == 0


# -------------------------------------------------------------------- medium pulled out


@pytest.fixture
def two_study_disc(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A stick with two studies in two folders (8 + 8 images)."""
    root = tmp_path / "PATIENT_STICK"
    files = write_study(root / "A", instances=8, rows=32, columns=32, layout="nested", seed=1)
    files += write_study(root / "B", instances=8, rows=32, columns=32, layout="nested", seed=2)
    return root, files


def test_a_stick_pulled_mid_import_keeps_what_was_read_and_the_rerun_completes_the_case(
    service: KioskService, two_study_disc: tuple[Path, list[Path]], tmp_path: Path,
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    root, files = two_study_disc
    away = tmp_path / "pulled"
    source = PulledMidImport(DirectorySource(root), pull_at_open=6, away=away)

    report = service.import_source(source)

    assert away.is_dir() and not root.exists()  # it really was pulled
    assert report["complete"] is False
    assert "medium was removed" in report["error"]
    # Nothing read before the pull is lost: exactly those images are stored and verified.
    assert len(source.opened) == 5
    assert report["instances"]["found"] == report["instances"]["verified"] == 5
    rows = _case_rows(service, report["case_id"])
    assert {r.source_path for r in rows} == set(source.opened)
    _assert_rows_whole(service, rows)
    assert import_exit_code(report) == 4
    assert _job_state(service, report["job_id"]) == "incomplete"
    assert _case_status(service, report["case_id"]) == "incomplete"

    # Plugged in again: the same case is completed, nothing is stored twice.
    away.rename(root)
    code, out, _err = run_cli("import", str(root), "--case", report["case_id"], "--json")
    again = json.loads(out)
    assert code == 0, again
    assert again["complete"] is True and again["case_id"] == report["case_id"]
    assert again["instances"] == {"found": 16, "imported": 11, "duplicates": 5,
                                  "verified": 16}
    rows = _case_rows(service, report["case_id"])
    assert sorted(r.sop_instance_uid for r in rows) == sorted(_uid(p) for p in files)
    _assert_rows_whole(service, rows)
    assert _case_status(service, report["case_id"]) == "complete"


def _losetup_usable() -> bool:
    return os.geteuid() == 0 and shutil.which("losetup") is not None


def _device_size(device: str) -> int:
    fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


@pytest.mark.root
@pytest.mark.skipif(not _losetup_usable(), reason="needs root and losetup (loop devices)")
def test_a_cd_ejected_mid_import_keeps_the_images_already_read(
    service: KioskService, tmp_path: Path
) -> None:
    root = tmp_path / "CD"
    files = write_study(root, instances=80, rows=128, columns=128, layout="nested")
    image = _build_iso(root, tmp_path / "ct.iso", "CT_DISC")
    attach = subprocess.run(["losetup", "-f", "--show", "-r", str(image)],
                            capture_output=True, text=True, timeout=30)
    if attach.returncode != 0:
        pytest.skip(f"cannot attach a loop device here: {attach.stderr.strip()}")
    device = attach.stdout.strip()
    detached: list[int] = []

    def eject(p: ImportProgress) -> None:
        if p.phase != "copying" or detached:
            return
        subprocess.run(["losetup", "-d", device], check=True, capture_output=True, timeout=30)
        detached.append(p.files_done)
        # Readers already open keep the device until they close (the kernel defers the
        # detach); wait until it is really gone, as a pulled disc would be.
        for _ in range(200):
            if _device_size(device) == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"{device} did not go away after losetup -d")

    try:
        report = service.import_path(device, on_progress=eject)
    finally:
        if not detached:
            subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)

    assert detached, "the import finished before the disc could be ejected"
    assert report["complete"] is False
    assert "removed" in report["error"]
    found = report["instances"]["found"]
    assert 1 <= found < len(files)
    assert report["instances"]["verified"] == found
    rows = _case_rows(service, report["case_id"])
    assert len(rows) == found
    _assert_rows_whole(service, rows)
    on_disc = {str(p.relative_to(root)): _sha(p.read_bytes()) for p in files}
    assert all(on_disc[r.source_path] == r.sha256 for r in rows)
    assert import_exit_code(report) == 4
    assert _job_state(service, report["job_id"]) == "incomplete"


# ------------------------------------------------------------------ 100,000 tiny files

_HUGE_IMPORT = r"""
import json, resource, sys, time
from kiosk.bootstrap import build_service

service = build_service(data_dir=sys.argv[2], env={})
events = []
def note(p):
    events.append((time.monotonic(), p.phase, p.files_done, p.files_total))
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
report = service.import_path(sys.argv[1], on_progress=note)
end = time.monotonic()
stamps = [start] + [e[0] for e in events] + [end]
print(json.dumps({
    "seconds": end - start,
    "max_gap": max(b - a for a, b in zip(stamps, stamps[1:])),
    "events": [e[1:] for e in events],
    "found": report["instances"]["found"],
    "verified": report["instances"]["verified"],
    "ignored": len(report["ignored"]),
    "rejected": len(report["rejected"]),
    "complete": report["complete"],
    "rss_growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before,
}))
"""

HUGE_FILES = 100_000


def _make_huge_tree(root: Path) -> int:
    """99,994 small non-DICOM files (some empty) and 6 DICOM images in 100 folders."""
    dicom = write_study(root / "D07" / "E03" / "STUDY", instances=6, rows=16, columns=16)
    count = len(dicom)
    per_dir, extra = divmod(HUGE_FILES - count, 100)
    for a in range(10):
        for b in range(10):
            folder = root / f"D{a:02d}" / f"E{b:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                n = per_dir + (extra if a == b == 9 else 0)
                for i in range(n):
                    fd = os.open(f"f{i:04d}.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                                 dir_fd=dfd)
                    if i % 500:
                        os.write(fd, b"scanner log line %d\n" % i)
                    os.close(fd)
            finally:
                os.close(dfd)
            count += n
    return count


@pytest.fixture
def huge_stick(tmp_path: Path) -> Iterator[Path]:
    """The 100,000-file tree, on tmpfs when there is room.

    Creating and deleting 100,000 files on the VM's ext4 (mounted with ``discard``) takes
    2.5 to 36 s depending on what else writes to the disk; on tmpfs it is under a second and
    the test measures the importer, not the disk. It is removed afterwards either way, so
    pytest's kept temp dirs do not pile up trees of 100,000 files.
    """
    shm = Path("/dev/shm")
    base = tmp_path
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30:
        base = Path(tempfile.mkdtemp(prefix="kiosk-huge-", dir=shm))
    root = base / "BIG_STICK"
    try:
        assert _make_huge_tree(root) == HUGE_FILES
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_a_stick_with_100000_tiny_files_is_accounted_for_with_steady_progress_and_flat_memory(
    huge_stick: Path, tmp_path: Path,
) -> None:
    root = huge_stick

    result = subprocess.run([sys.executable, "-c", _HUGE_IMPORT, str(root),
                             str(tmp_path / "kiosk-data")],
                            capture_output=True, text=True, timeout=180, check=True)
    r = json.loads(result.stdout)

    assert r["found"] == r["verified"] == 6
    assert r["rejected"] == 0
    assert r["ignored"] + r["found"] == HUGE_FILES
    assert r["complete"] is True

    events = r["events"]
    copying = [done for phase, done, _total in events if phase == "copying"]
    assert len(copying) >= 10, "progress must keep coming during a long copy"
    assert all(b > a for a, b in itertools.pairwise(copying)), "files_done must keep moving"
    assert events[-1] == ["done", HUGE_FILES, HUGE_FILES]
    assert r["max_gap"] < 5.0, f"no progress for {r['max_gap']:.1f} s ({r['seconds']:.1f} s)"
    assert r["rss_growth_kib"] < 150 * 1024, f"peak RSS grew {r['rss_growth_kib']} KiB"


# ------------------------------------------------------------------------------ symlinks


def test_symlinks_leaving_the_medium_are_reported_and_never_followed(
    service: KioskService, tmp_path: Path
) -> None:
    root = tmp_path / "STICK"
    files = write_study(root, instances=3, rows=16, columns=16)
    outside = tmp_path / "elsewhere"
    other = write_study(outside, instances=1, rows=16, columns=16, seed=99)
    (root / "sub").mkdir()
    links = {
        "passwd": Path("/etc/passwd"),
        "ELSEWHERE": outside,  # a directory off the medium
        "IM_LINK": other[0],  # a DICOM image off the medium
        "sub/UP": Path("../../elsewhere"),  # relative, climbing out
    }
    for name, target in links.items():
        (root / name).symlink_to(target)

    report = service.import_path(root)

    ignored = {i["path"]: i["reason"] for i in report["ignored"]}
    for name in links:
        assert name in ignored, f"{name} not reported"
        assert "symbolic link" in ignored[name] and "not followed" in ignored[name]
    assert report["rejected"] == []
    assert report["instances"]["found"] == 3
    rows = _case_rows(service, report["case_id"])
    assert sorted(r.sop_instance_uid for r in rows) == sorted(_uid(p) for p in files)
    assert _uid(other[0]) not in {r.sop_instance_uid for r in rows}
    assert not service.store.has(_sha(other[0].read_bytes()))
    assert not service.store.has(_sha(Path("/etc/passwd").read_bytes()))
    assert import_exit_code(report) == 0

