"""The background sync loop the app starts (and ``kiosk sync`` without ``--once`` runs).

It runs rounds until stopped, sleeping between them as long as nothing is due (backoff while
offline, the configured interval otherwise). :meth:`SyncLoop.wake` starts the next round now:
the UI calls it after an import or a report was attached. A round that raises is logged and the
loop carries on: the loop dying would silently stop every upload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosk.cloud.sync import Syncer, SyncReport, SyncStatus
from kiosk.cloud.uploader import ProgressCallback

log = logging.getLogger(__name__)

StatusCallback = Callable[[SyncStatus], None]


class SyncLoop:
    """Sync rounds in a loop, in the calling thread or a daemon thread.

    Parameters
    ----------
    syncer : Syncer
        Runs one round.
    on_status : callable, optional
        Called with the status after every round (from the loop's thread: the UI must hand it
        to its own thread, e.g. ``call_from_thread``).
    on_progress : callable, optional
        Upload progress events.
    on_round : callable, optional
        Called with each round's :class:`SyncReport` (the CLI prints them).
    """

    def __init__(self, syncer: Syncer, *, on_status: StatusCallback | None = None,
                 on_progress: ProgressCallback | None = None,
                 on_round: Callable[[SyncReport], None] | None = None) -> None:
        self.syncer = syncer
        self.on_status = on_status
        self.on_progress = on_progress
        self.on_round = on_round
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run rounds until ``stop`` (or :meth:`stop`) is set."""
        stop = stop or self._stop
        while not stop.is_set():
            self._wake.clear()
            try:
                report = self.syncer.run_once(self.on_progress, cancel=stop)
                self.rounds += 1
                if self.on_round is not None:
                    self.on_round(report)
                if self.on_status is not None:
                    self.on_status(report.status)
            except Exception:  # keep syncing: the next round may work
                log.exception("sync round failed")
            delay = self.syncer.seconds_until_next()
            # Wake early on wake() or stop; poll stop at least once a second.
            waited = 0.0
            while waited < delay and not stop.is_set() and not self._wake.is_set():
                step = min(1.0, delay - waited)
                self._wake.wait(step)
                waited += step

    def wake(self) -> None:
        """Start the next round now (new import, attached report, settings changed)."""
        self._wake.set()

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread; return it."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, args=(self._stop,),
                                        name="kiosk-sync", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop (an upload stops after its current batch) and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
