"""Content-addressed file store: every file is kept once, named by the SHA-256 of its bytes.

Blobs are streamed into a job's folder under ``tmp/``, made durable in batches (one ``syncfs``
per batch instead of one ``fsync`` per file), then renamed to ``blobs/ab/<sha256>``. So a file
under its final name is always complete: a power cut leaves at most orphans in ``tmp/``, which
:meth:`BlobStore.clean_tmp` removes. Small blobs (manifests, reports) are written with
:func:`kiosk.store.durable.write_atomic`, their temp files staged in ``tmp/.small/``: so
start-up looks for a power cut's leftovers in one small folder, not in 256 shards holding
every blob ever stored.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiosk.store.durable import remove_stale_temps, syncfs, write_atomic

#: The folder under ``tmp/`` where small blobs' temp files are written.
SMALL_STAGING = ".small"

@dataclass(frozen=True)
class PendingBlob:
    """A blob fully written to its temp file, not yet durable or visible."""

    tmp_path: Path
    sha256: str
    size: int


class BlobWriter:
    """Streams one blob into a temp file while hashing it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._fh: BinaryIO = open(tmp_path, "xb", buffering=0)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | memoryview) -> None:
        """Append ``chunk`` to the blob and the running hash."""
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            n = self._fh.write(view)
            view = view[n:] if n is not None else view
        self.size += len(chunk)

    def finish(self) -> PendingBlob:
        """Close the temp file and return the pending blob (not yet durable)."""
        self._fh.close()
        return PendingBlob(self.tmp_path, self._hash.hexdigest(), self.size)

    def abort(self) -> None:
        """Discard the temp file."""
        self._fh.close()
        self.tmp_path.unlink(missing_ok=True)


class BlobStore:
    """The content-addressed store under ``blobs_dir`` with staging in ``tmp_dir``."""

    def __init__(self, blobs_dir: Path, tmp_dir: Path) -> None:
        self.blobs_dir = blobs_dir
        self.tmp_dir = tmp_dir

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (it may not exist)."""
        return self.blobs_dir / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        """Whether the blob exists under its final name (and so is complete)."""
        return self.path_for(sha256).is_file()

    def writer(self, staging: Path) -> BlobWriter:
        """Start a new blob in ``staging`` (a job's folder under ``tmp_dir``)."""
        return BlobWriter(staging / f"{secrets.token_hex(12)}.part")

    def commit(self, pending: Iterable[PendingBlob]) -> None:
        """Make pending blobs durable, then visible under their final names.

        Order matters for power cuts: data first (``syncfs``), then the renames, then another
        ``syncfs`` so the directory entries are durable before the caller records them.
        """
        items = list(pending)
        if not items:
            return
        syncfs(self.tmp_dir)
        for blob in items:
            final = self.path_for(blob.sha256)
            if final.exists():
                blob.tmp_path.unlink(missing_ok=True)  # same bytes already stored
                continue
            final.parent.mkdir(exist_ok=True)
            os.replace(blob.tmp_path, final)
        syncfs(self.blobs_dir)

    def discard(self, pending: Iterable[PendingBlob]) -> None:
        """Drop pending blobs (their file was rejected or the import was cancelled)."""
        for blob in pending:
            blob.tmp_path.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        """Store small bytes (a manifest, a report) durably right away; return the hash."""
        sha = hashlib.sha256(data).hexdigest()
        final = self.path_for(sha)
        if not final.exists():
            final.parent.mkdir(exist_ok=True)
            staging = self.tmp_dir / SMALL_STAGING
            staging.mkdir(parents=True, exist_ok=True)
            write_atomic(final, data, staging=staging)
        return sha

    def read_bytes(self, sha256: str) -> bytes:
        """Return a (small) blob's bytes."""
        return self.path_for(sha256).read_bytes()

    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for reading."""
        return open(self.path_for(sha256), "rb")

    def leftovers(self) -> list[Path]:
        """What staging holds now: job folders, stray files and small blobs' temps.

        The small-blob staging folder itself is not a leftover (it is made once and kept);
        its temp files are. Empty after every finished import, export or purge.
        """
        if not self.tmp_dir.is_dir():
            return []
        found: list[Path] = []
        for entry in sorted(self.tmp_dir.iterdir()):
            if entry.name == SMALL_STAGING and entry.is_dir():
                found += sorted(entry.iterdir())
            else:
                found.append(entry)
        return found

    def clean_tmp(self, keep: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        """Remove staging folders of dead jobs (not in ``keep``) and stale small-blob temps.

        Small-blob temps are removed only when old (another process may be writing one now).
        Shards are not searched: temps there come only from releases before ``tmp/.small``.
        """
        removed = 0
        for leftover in self.tmp_dir.iterdir():
            if leftover.name == SMALL_STAGING:
                removed += remove_stale_temps(leftover)
                continue
            if leftover.name in keep:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
        return removed
