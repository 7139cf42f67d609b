"""Simulated media: folders stand in for discs and sticks (``kiosk demo``, UI tests).

:class:`FakeMediaWatcher` is built like pyudev's ``FakeMonitor``: events are queued and a byte
is written to a pipe, so :meth:`~FakeMediaWatcher.fileno` works with ``select`` exactly like the
real watcher's netlink socket. It passes the same contract tests as
:class:`kiosk.media.udev_monitor.UdevMediaWatcher`. Roles are decided by the same
:func:`kiosk.media.roles.decide_role` on the folder, unless the caller gives a ``role_hint``.

:class:`FakeMounter` gives access to those folders: a source is the folder read through
:class:`~kiosk.sources.directory.DirectorySource`, a target is the folder itself, and ejecting a
medium removes it from the watcher, as pulling a stick would.

Example (what ``kiosk demo`` does)::

    watcher = FakeMediaWatcher()
    desk = MediaDesk(watcher, FakeMounter(watcher))
    watcher.insert(sample_disc_dir, kind=MediumKind.OPTICAL, label="HOSPITAL CD")
    watcher.insert(stick_dir, label="PATIENT")
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import MediaError
from kiosk.media.medium import MediaAction, MediaEvent, Medium, MediumKind, MediumView, Role
from kiosk.media.mount_policy import check_usable
from kiosk.media.roles import ProbeLimits, SourceView, decide_role
from kiosk.sources.directory import DirectorySource
from kiosk.sources.source import Source


class FakeMediaWatcher:
    """A :class:`~kiosk.media.medium.MediaWatcher` whose media are folders inserted by the caller.

    Thread-safe: :meth:`insert` and :meth:`remove` may be called from any thread (a demo
    script, a test) while another thread polls.

    Parameters
    ----------
    limits : ProbeLimits, optional
        The budget for deciding roles, as for real media.
    """

    def __init__(self, limits: ProbeLimits | None = None) -> None:
        self.limits = limits or ProbeLimits()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._lock = threading.Lock()
        self._queue: list[MediaEvent] = []
        self._inserted: dict[str, Medium] = {}  # the truth, as the simulation has it
        self._reported: dict[str, Medium] = {}  # what poll() has reported so far
        self._closed = False

    # ----------------------------------------------------------------------- the simulation

    def insert(self, path: str | os.PathLike[str], *, kind: MediumKind = MediumKind.USB,
               role_hint: Role | None = None, label: str | None = None,
               fs_type: str | None = None, vendor: str | None = "MedPass",
               model: str | None = None, serial: str | None = None,
               read_only: bool | None = None) -> Medium:
        """Insert the folder ``path`` as a medium.

        Parameters
        ----------
        path : path-like
            The folder holding the medium's files; its absolute path is the ``device``.
        kind : MediumKind
            A disc (``OPTICAL``) or a stick (``USB``).
        role_hint : Role, optional
            Force the role instead of looking at the files.
        label, fs_type, vendor, model, serial, read_only
            Identity shown to the coordinator; defaults suit the kind (a disc is an
            ``iso9660`` read-only medium, a stick ``vfat``).

        Returns
        -------
        Medium
            The medium as :meth:`poll` will report it.

        Raises
        ------
        MediaError
            ``path`` is not a folder, or the watcher is closed.
        """
        folder = Path(path).absolute()
        if not folder.is_dir():
            raise MediaError(f"{folder} is not a folder, so it cannot stand in for a medium.")
        optical = kind is MediumKind.OPTICAL
        if role_hint is not None:
            role, reason = role_hint, "set by the simulation"
        else:
            source = DirectorySource(folder)
            role, reason = decide_role(SourceView(source), kind, self.limits)
        medium = Medium(
            device=str(folder), kind=kind,
            fs_type=fs_type or ("iso9660" if optical else "vfat"),
            label=label if label is not None else folder.name,
            vendor=vendor, model=model or ("Simulated DVD drive" if optical
                                           else "Simulated USB stick"),
            serial=serial, size=_folder_size(folder),
            read_only=optical if read_only is None else read_only,
            disk=str(folder), role=role, role_reason=reason)
        with self._lock:
            self._check_open()
            old = self._inserted.get(medium.device)
            if old is not None:
                self._queue.append(MediaEvent(MediaAction.REMOVE, old))
            self._inserted[medium.device] = medium
            self._queue.append(MediaEvent(MediaAction.INSERT, medium))
            self._wake()
        return medium

    def remove(self, path: str | os.PathLike[str]) -> None:
        """Pull the medium at ``path`` (no-op when it is not inserted)."""
        device = str(Path(path).absolute())
        with self._lock:
            self._check_open()
            medium = self._inserted.pop(device, None)
            if medium is not None:
                self._queue.append(MediaEvent(MediaAction.REMOVE, medium))
                self._wake()

    # ---------------------------------------------------------------------- the MediaWatcher

    def fileno(self) -> int:
        """The pipe's read end: readable while events are queued."""
        return self._read_fd

    def poll(self, timeout: float | None = None) -> list[MediaEvent]:
        """Wait up to ``timeout`` s for queued events and return them.

        Raises
        ------
        MediaError
            The watcher is closed.
        """
        with self._lock:
            self._check_open()
        select.select([self._read_fd], [], [], timeout)
        with self._lock:
            self._check_open()
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read_fd, 4096):
                    pass
            events, self._queue = self._queue, []
            for event in events:
                if event.action is MediaAction.REMOVE:
                    self._reported.pop(event.medium.device, None)
                else:
                    self._reported[event.medium.device] = event.medium
        return events

    def present(self) -> list[Medium]:
        """Media reported by :meth:`poll` and not since removed."""
        with self._lock:
            return [self._reported[k] for k in sorted(self._reported)]

    def close(self) -> None:
        """Close the pipe; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)

    def __enter__(self) -> FakeMediaWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe is already readable
            os.write(self._write_fd, b"!")

    def _check_open(self) -> None:
        if self._closed:
            raise MediaError("The media watcher is closed.")


class FakeMounter:
    """A :class:`~kiosk.media.medium.Mounter` for the folders of a :class:`FakeMediaWatcher`.

    The role rules are the real ones (:func:`kiosk.media.mount_policy.check_usable`): a simulated
    disc cannot be a target either.
    """

    def __init__(self, watcher: FakeMediaWatcher) -> None:
        self.watcher = watcher
        self.released: list[str] = []
        self.forgotten: list[str] = []

    @contextlib.contextmanager
    def look(self, medium: Medium) -> Iterator[MediumView]:
        """The folder, read as a source."""
        yield SourceView(DirectorySource(Path(medium.device), label=medium.label))

    def open_source(self, medium: Medium) -> Source:
        """The folder as a read-only :class:`DirectorySource`."""
        check_usable(medium, Role.SOURCE)
        return DirectorySource(Path(medium.device), label=medium.label)

    def mount_target(self, medium: Medium) -> Path:
        """The folder itself."""
        check_usable(medium, Role.TARGET)
        return Path(medium.device)

    def release(self, medium: Medium) -> None:
        """Nothing is mounted; recorded for tests."""
        self.released.append(medium.device)

    def eject(self, medium: Medium) -> None:
        """Take the medium out of the watcher, as pulling it would."""
        self.release(medium)
        self.watcher.remove(medium.device)

    def forget(self, medium: Medium) -> None:
        """Nothing to clean up; recorded for tests."""
        self.forgotten.append(medium.device)

    def cleanup(self) -> list[str]:
        """Nothing is ever mounted."""
        return []


def _folder_size(folder: Path, limit: int = 100_000) -> int:
    """Bytes of the files in ``folder`` (counting stops after ``limit`` files)."""
    total = count = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
            count += 1
            if count >= limit:
                return total
    return total
