"""Write a case's package to the patient's stick, safely, and prove it is there.

Rules (DESIGN.md §5, patient-USB issue):

* Nothing already on the stick is deleted or overwritten: the package goes into a new folder
  ``MEDPASS_<case>_<date>``; only our own leftovers of an interrupted export (marked by a
  ``.medpass-export`` file inside a ``*.INCOMPLETE`` folder) are ever removed.
* Free space is checked first and the shortfall is said in MB.
* Until everything is written, synced and read back, the folder is named ``….INCOMPLETE``;
  a pulled stick or a kill -9 leaves it clearly named, never looking complete.
* Read-back bypasses the page cache (``O_DIRECT``, or ``posix_fadvise(DONTNEED)`` after
  ``fsync``), so what is compared is what the stick holds, not what the kernel remembers.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kiosk.errors import KioskError
from kiosk.package.aeszip import (
    AesZipWriter,
    KeySupply,
    ReadBackError,
    default_split_size,
    read_back_sha256,
)
from kiosk.package.passphrase import new_passphrase
from kiosk.package.readme_txt import readme_text
from kiosk.store.durable import fsync_dir, syncfs
from kiosk.viewer import LICENSES_NAME, OPENER_NAME, built_file

if TYPE_CHECKING:  # not imported at run time: start_keys must not wait for pydicom
    from kiosk.package.plan import PackagePlan
    from kiosk.store.blobstore import BlobStore

MARKER = ".medpass-export"
INCOMPLETE = ".INCOMPLETE"
ARCHIVE_BASENAME = "IMAGES"
_CHUNK = 4 << 20
#: Entry keys derived in the background before the package is planned (see start_keys):
#: about what the start-up and planning of a 2,000-image case leave time for.
_PREPARE_KEYS = 1024
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_GONE = {errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.ESTALE,
         errno.ENOMEDIUM, errno.ENOTDIR}


class ExportError(KioskError):
    """The package could not be written; the stick holds no package that looks complete."""

    default_title = "Export failed"
    exit_code = 1


class StickFullError(ExportError):
    """Not enough free space on the stick."""

    default_title = "The stick is full"


class StickReadOnlyError(ExportError):
    """The stick cannot be written (write-protect switch, read-only filesystem)."""

    default_title = "The stick is read-only"


class StickRemovedError(ExportError):
    """The stick disappeared (or failed) while the package was written."""

    default_title = "The stick was removed"


class ExportVerificationError(ExportError):
    """What was read back from the stick differs from what was written."""

    default_title = "Verification failed"
    exit_code = 4


@dataclass(frozen=True)
class ExportProgress:
    """A progress event (they replace each other in the UI)."""

    phase: str  # checking | writing | verifying | done
    bytes_done: int
    bytes_total: int
    current: str
    elapsed: float


@dataclass(frozen=True)
class ExportResult:
    """What was written and verified."""

    folder: Path
    files: int  # files in the package (inside the archive when encrypted)
    bytes: int  # bytes written to the stick
    encrypted: bool
    passphrase: str | None
    written: list[str]  # paths relative to the folder, as on the stick
    seconds: float


def _map_os_error(exc: OSError, needed: int = 0) -> ExportError:
    if exc.errno in _FULL:
        return StickFullError(
            f"The stick ran out of space while writing (the package needs {needed / 1e6:.0f} "
            "MB). Nothing on it was changed except an unfinished folder marked INCOMPLETE. Use "
            "a larger stick, or free space and try again.")
    if exc.errno in _READ_ONLY:
        return StickReadOnlyError(
            "The stick cannot be written. Check its write-protect switch, or use another "
            "stick. Nothing was changed.")
    if exc.errno in _GONE:
        return StickRemovedError(
            "The stick was removed or stopped responding while the package was written. "
            "Insert it (or another stick) and export again; an unfinished folder marked "
            "INCOMPLETE may be left on it.")
    return ExportError(f"Writing to the stick failed: {exc.strerror or exc}.")


#: Longest name in a package, for the space estimate: ``PT000000/ST000000/SE000000/IM000000``
#: is 35 bytes; report names are shorter.
_NAME_BOUND = 64


def required_bytes(plan: PackagePlan, encrypted: bool, block: int) -> int:
    """Bytes the package needs on a filesystem with ``block``-byte clusters, with margin."""
    readme = sum(len(data) for data in plan.beside.values()) + 16 * 1024
    if encrypted:
        # Per entry: local + central headers, AES extra field, salt, verifier, HMAC, ZIP64.
        overhead = plan.count * (200 + 2 * _NAME_BOUND)
        return plan.total_bytes + overhead + readme + 4 * block + (1 << 20)
    slack = plan.count * block  # each file wastes up to one cluster
    return plan.total_bytes + slack + readme + (1 << 20)


def beside_files(*, encrypted: bool, fingerprint: str | None) -> dict[str, bytes]:
    """The files written beside the package: README.TXT, the opener page and its licences
    (the page opens the zip, or an unencrypted package's folder).

    Raises
    ------
    ConfigError
        The install did not build the opener page.
    """
    files = {"README.TXT": readme_text(encrypted=encrypted,
                                       fingerprint=fingerprint).encode("utf-8-sig")}
    for name in (OPENER_NAME, LICENSES_NAME):
        files[name] = built_file(name).read_bytes()
    return files


def _free_bytes(path: Path) -> tuple[int, int]:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_frsize


def _claim_folder(target: Path, case_id: str) -> tuple[Path, Path]:
    """Pick ``MEDPASS_<case>_<date>[_n]`` that is free, create its INCOMPLETE twin."""
    stem = f"MEDPASS_{case_id}_{time.strftime('%Y%m%d')}"
    for n in range(1, 100):
        name = stem if n == 1 else f"{stem}_{n}"
        final, work = target / name, target / (name + INCOMPLETE)
        if final.exists():
            continue
        if work.exists():
            if not (work / MARKER).is_file():
                continue  # not ours: never touch it
            shutil.rmtree(work)  # our own leftover from an interrupted export
        work.mkdir()
        (work / MARKER).write_text("MedPass Kiosk export in progress; if you see this "
                                   "folder, the export did not finish.\n")
        return final, work
    raise ExportError("The stick already holds 99 packages of this case today.")


def start_keys(encrypt: bool = True) -> KeySupply | None:
    """A new passphrase, its entry keys already being derived in the background.

    Call it as early as possible (before planning, even before the rest of the program is
    imported) and pass the result to :func:`export_package`: key derivation is a millisecond of
    CPU per file, which then runs on the core that start-up and planning leave idle. None when
    the package is not encrypted.
    """
    return KeySupply(new_passphrase(), prepare=_PREPARE_KEYS) if encrypt else None


def export_package(
    plan: PackagePlan,
    store: BlobStore,
    target: Path,
    *,
    encrypt: bool = True,
    keys: KeySupply | None = None,
    split_size: int | None = None,
    on_progress: Callable[[ExportProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """Write ``plan`` into a new folder on ``target``, verify it from the device, finish it.

    ``keys`` (from :func:`start_keys`) holds the passphrase and keys derived ahead; without
    it a passphrase is made here. It is closed when the export ends.

    Raises
    ------
    StickFullError, StickReadOnlyError, StickRemovedError
        The stick could not take the package; an unfinished folder is removed when possible,
        otherwise left named ``*.INCOMPLETE``.
    ExportVerificationError
        The read-back differs from what was written.
    """
    if encrypt and keys is None:
        keys = KeySupply(new_passphrase())
    try:
        if keys is not None:
            keys.expect(plan.count)
        return _export(plan, store, target, keys if encrypt else None, split_size,
                       on_progress, cancel)
    finally:
        if keys is not None:
            keys.close()


def _export(plan: PackagePlan, store: BlobStore, target: Path, keys: KeySupply | None,
            split_size: int | None, on_progress: Callable[[ExportProgress], None] | None,
            cancel: threading.Event | None) -> ExportResult:
    encrypt = keys is not None
    started = time.monotonic()
    notify = on_progress or (lambda _p: None)
    total = plan.total_bytes

    def progress(phase: str, done: int, current: str = "") -> None:
        notify(ExportProgress(phase, done, total, current, time.monotonic() - started))

    progress("checking", 0)
    plan.beside = beside_files(encrypted=encrypt, fingerprint=plan.fingerprint)
    if not target.is_dir():
        raise StickRemovedError(f"{target} is not there. Insert the patient's stick.")
    try:
        free, block = _free_bytes(target)
    except OSError as exc:
        raise _map_os_error(exc) from exc
    needed = required_bytes(plan, encrypt, block)
    if free < needed:
        raise StickFullError(
            f"The stick has {free / 1e6:.0f} MB free; this package needs {needed / 1e6:.0f} "
            f"MB. Free {(needed - free) / 1e6:.0f} MB on it or use a larger stick. Nothing "
            "was written.")
    try:
        final, work = _claim_folder(target, plan.case_id)
    except OSError as exc:
        raise _map_os_error(exc, needed) from exc

    passphrase = keys.passphrase if keys is not None else None
    try:
        written, expected = _write(plan, store, work, keys, split_size, progress, cancel)
        for name, data in plan.beside.items():
            (work / name).write_bytes(data)
            written.append(name)
            expected[name] = hashlib.sha256(data).hexdigest()
        syncfs(work)
        progress("verifying", total)
        names = list(expected)
        for rel, sha in zip(names, read_back_sha256([work / n for n in names]), strict=True):
            if sha != expected[rel]:
                raise _verification_failed(f"{rel} read back from the stick differs from what "
                                           "was written: the stick may be faulty.")
        (work / MARKER).unlink()
        os.rename(work, final)
        fsync_dir(target)
    except BaseException as exc:
        _cleanup(work)
        if isinstance(exc, OSError):
            raise _map_os_error(exc, needed) from exc
        raise
    progress("done", total)
    return ExportResult(
        folder=final, files=plan.count, bytes=sum(_size(final / r) for r in written),
        encrypted=encrypt, passphrase=passphrase, written=sorted(written),
        seconds=round(time.monotonic() - started, 3))


def _size(path: Path) -> int:
    return path.stat().st_size


def _write(plan: PackagePlan, store: BlobStore, work: Path, keys: KeySupply | None,
           split_size: int | None, progress: Callable[..., None],
           cancel: threading.Event | None) -> tuple[list[str], dict[str, str]]:
    """Write the files.

    Returns the paths written (relative to ``work``) and, for those still to be read back
    from the device, their expected SHA-256: the archive's volumes are read back and checked
    by the writer itself, segment by segment while it writes (see
    :mod:`kiosk.package.aeszip.pipeline`).
    """
    done = 0
    if keys is not None:
        writer = AesZipWriter(work, ARCHIVE_BASENAME, keys.passphrase, keys=keys,
                              split_size=split_size or default_split_size())
        with writer, _ahead(plan.files_to_write(), _PLAN_AHEAD) as files:
            for f in files:
                _check_cancel(cancel)
                with f.open(store) as src:
                    writer.add_file(f.arcname, src)
                done += f.size
                progress("writing", done, f.arcname)
            progress("verifying", done)
            try:
                result = writer.close()
            except ReadBackError as exc:
                raise _verification_failed(exc.text) from exc
        return [v.name for v in result.volumes], {}
    expected: dict[str, str] = {}
    with _ahead(plan.files_to_write(), _PLAN_AHEAD) as files:
        for f in files:
            _check_cancel(cancel)
            dest = work / f.arcname
            dest.parent.mkdir(parents=True, exist_ok=True)
            with f.open(store) as src, open(dest, "xb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            expected[f.arcname] = f.sha256
            done += f.size
            progress("writing", done, f.arcname)
    return list(expected), expected


_T = TypeVar("_T")
_PLAN_AHEAD = 64  # files named (headers read) ahead of the writer


@contextlib.contextmanager
def _ahead(items: Iterator[_T], depth: int) -> Iterator[Iterator[_T]]:
    """Run ``items`` on a thread of its own, up to ``depth`` items ahead of the consumer.

    The package reads each image's header to name it: about 0.1 ms of Python a file. On the
    writer's thread that adds to its AES and HMAC work; here it runs while the writer is inside
    them (they release the GIL). Errors reach the consumer in order, where they happened.
    """
    pipe: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                pipe.put(entry, timeout=0.1)
                return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return  # the consumer gave up
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - raised again on the consumer's thread
            put((None, exc))

    def consume() -> Iterator[_T]:
        while True:
            item, exc = pipe.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item

    thread = threading.Thread(target=produce, name="export-plan", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def _verification_failed(what: str) -> ExportVerificationError:
    return ExportVerificationError(f"{what} Use another stick.")


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ExportError("The export was cancelled; nothing was left on the stick.",
                          title="Export cancelled")


def _cleanup(work: Path) -> None:
    """Remove our unfinished folder; if the stick is gone it stays named INCOMPLETE."""
    shutil.rmtree(work, ignore_errors=True)


def export_summary(result: ExportResult, case_id: str, target: Path,
                   link: str | None) -> dict[str, Any]:
    """The export report of DESIGN.md §4."""
    return {
        "case_id": case_id,
        "target": str(target),
        "folder": str(result.folder),
        "files": result.files,
        "bytes": result.bytes,
        "encrypted": result.encrypted,
        **({"passphrase": result.passphrase} if result.passphrase else {}),
        "link": link,
        "verified": True,
        "written": result.written,
        "seconds": result.seconds,
    }
