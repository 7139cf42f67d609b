"""The coordinator's view of the media on the desk: what is inserted, its role, open and eject.

A small object (udiskie-style: collaborators passed in) over a
:class:`~kiosk.media.medium.MediaWatcher`
and a :class:`~kiosk.media.medium.Mounter`. It adds what the watcher does not know:

* the coordinator's role overrides (kept while the medium stays in);
* which media are open or mounted, so a medium pulled without warning is cleaned up
  (its mount lazily detached) as soon as the watcher reports it gone;
* the rule that a source is never written to: a medium whose role is ``source`` cannot be
  mounted as a target unless the coordinator changed its role first.

The UI polls from one thread while imports and exports open and release media from workers,
so the two tables are guarded by a lock; it is never held while the mounter works (a mount or
an eject can take seconds).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import KioskError, MediaError
from kiosk.media.medium import MediaAction, MediaEvent, MediaWatcher, Medium, Mounter, Role
from kiosk.media.roles import ProbeLimits, decide_role
from kiosk.sources.source import Source

log = logging.getLogger(__name__)


class RoleClassifier:
    """Decide a new medium's role by looking at it through a mounter (bounded in time).

    Parameters
    ----------
    mounter : Mounter
        How to look at the medium.
    limits : ProbeLimits, optional
        How much looking is allowed.
    """

    def __init__(self, mounter: Mounter, limits: ProbeLimits | None = None) -> None:
        self.mounter = mounter
        self.limits = limits or ProbeLimits()

    def __call__(self, medium: Medium) -> Medium:
        """Return ``medium`` with its role and the reason; unreadable media get ``unknown``."""
        try:
            with self.mounter.look(medium) as view:
                role, reason = decide_role(view, medium.kind, self.limits)
        except (KioskError, OSError) as exc:
            text = exc.text if isinstance(exc, KioskError) else str(exc)
            role, reason = Role.UNKNOWN, f"cannot be read: {text}"
        return medium.with_role(role, reason)


class MediaDesk:
    """Media on the desk, with roles, overrides and safe access.

    Parameters
    ----------
    watcher : MediaWatcher
        Reports inserts and removes (real or fake).
    mounter : Mounter
        Opens and mounts the media the watcher reports.
    """

    def __init__(self, watcher: MediaWatcher, mounter: Mounter) -> None:
        self.watcher = watcher
        self.mounter = mounter
        self._overrides: dict[str, tuple[Medium, Role]] = {}
        #: Media opened or mounted through this desk, as they were when opened.
        self._in_use: dict[str, Medium] = {}
        self._lock = threading.Lock()

    def fileno(self) -> int:
        """The watcher's descriptor, for ``select``."""
        return self.watcher.fileno()

    def poll(self, timeout: float | None = None) -> list[MediaEvent]:
        """Wait for media events (see :meth:`MediaWatcher.poll`), with overrides applied.

        A removed medium that was open or mounted is cleaned up before its event is returned.
        """
        events = []
        for event in self.watcher.poll(timeout):
            medium = event.medium
            if event.action is MediaAction.REMOVE:
                with self._lock:
                    self._overrides.pop(medium.device, None)
                    opened = self._in_use.pop(medium.device, None)
                if opened is not None:
                    self.mounter.forget(opened)
                    log.warning("%s was removed while in use; its mount was cleaned up",
                                medium.device)
            events.append(MediaEvent(event.action, self._apply(medium)))
        return events

    def present(self) -> list[Medium]:
        """Media inserted now, with the coordinator's role overrides."""
        return [self._apply(m) for m in self.watcher.present()]

    def get(self, device: str) -> Medium:
        """The medium at ``device``.

        Raises
        ------
        MediaError
            Nothing is inserted there (any more).
        """
        for medium in self.present():
            if medium.device == device:
                return medium
        raise MediaError(f"There is no medium at {device} any more. Insert it again.")

    def set_role(self, device: str, role: Role) -> MediaEvent:
        """The coordinator overrides the role of the medium at ``device``.

        Returns
        -------
        MediaEvent
            A ``change`` event with the medium as it is now seen.
        """
        medium = self.get(device)
        with self._lock:
            self._overrides[device] = (medium, role)
        return MediaEvent(MediaAction.CHANGE, self._apply(medium))

    def open_source(self, device: str) -> Source:
        """Open the medium read-only for an import; :meth:`release` it afterwards."""
        medium = self.get(device)
        source = self.mounter.open_source(medium)
        with self._lock:
            self._in_use[device] = medium
        return source

    @contextlib.contextmanager
    def source(self, device: str) -> Iterator[Source]:
        """``with desk.source(device) as src:`` opens read-only and releases afterwards."""
        source = self.open_source(device)
        try:
            yield source
        finally:
            self.release(device)

    def open_target(self, device: str) -> Path:
        """Mount the patient's stick writable and return the folder to write into.

        Raises
        ------
        MediaError
            The medium holds DICOM (role ``source``) and the coordinator has not said it is
            a target; or the mounter refuses it (disc, write-protected, wrong file system).
        """
        medium = self.get(device)
        if medium.role is Role.SOURCE:
            raise MediaError("This medium holds DICOM images, so the kiosk treats it as a "
                             "hospital medium and never writes to it. If it really is the "
                             "patient's stick, set its role to target first.")
        path = self.mounter.mount_target(medium)
        with self._lock:
            self._in_use[device] = medium
        return path

    def release(self, device: str) -> None:
        """Close and unmount the medium at ``device`` (it stays inserted)."""
        with self._lock:
            opened = self._in_use.pop(device, None)
        if opened is None:
            return
        if any(m.device == device and m.same_medium(opened) for m in self.watcher.present()):
            self.mounter.release(opened)
        else:  # pulled meanwhile (the watcher has not been polled yet): nothing to flush
            self.mounter.forget(opened)

    def eject(self, device: str) -> None:
        """Unmount, then eject the disc or stop the stick so it can be pulled."""
        medium = self.get(device)
        with self._lock:
            self._in_use.pop(device, None)
        self.mounter.eject(medium)

    def cleanup_stale(self) -> list[str]:
        """Detach mounts left by a crashed kiosk; call once when the appliance UI starts.

        Never from a second process such as ``kiosk watch``: it would take the mounts of the
        running kiosk away.
        """
        return self.mounter.cleanup()

    def close(self) -> None:
        """Release everything still open and stop watching."""
        with self._lock:
            devices = sorted(self._in_use)
        for device in devices:
            with contextlib.suppress(KioskError, OSError):
                self.release(device)
        self.watcher.close()

    def _apply(self, medium: Medium) -> Medium:
        with self._lock:
            override = self._overrides.get(medium.device)
        if override is None or not override[0].same_medium(medium):
            return medium
        return medium.with_role(override[1], "set by the coordinator")
