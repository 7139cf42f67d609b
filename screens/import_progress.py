"""Import: live progress (files, MB, MB/s, ETA, current path) of a disc being copied; cancel.

The import runs in a thread worker; its progress callback posts at most ~10 messages a second
and those messages replace each other, so a 100,000-file disc never floods the event loop.
Returns the import report, or None when cancelled or failed (the error was shown).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from kiosk.ingest.importer import ImportCancelled, ImportProgress
from kiosk.security.logfile import digest, error_kind
from kiosk_tui import fmt
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ErrorDialog, error_say
from kiosk_tui.messages import ImportProgressed, WorkDone, WorkFailed

log = logging.getLogger(__name__)

#: Seconds between two progress messages from the worker (phase changes always go through).
PROGRESS_INTERVAL = 0.1


class ImportScreen(KioskScreen[dict[str, Any] | None]):
    """Copies one medium into the store (into ``case_id`` when adding a disc to a case)."""

    TITLE_KEY = "import.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "k.cancel", key_display="Esc"),
    ]

    def __init__(self, *, device: str | None = None, path: str | Path | None = None,
                 case_id: str | None = None, label: str | None = None,
                 archive_password: str | None = None) -> None:
        super().__init__(id="import")
        if (device is None) == (path is None):
            raise ValueError("give either the device of an inserted medium or a path")
        self.device, self.path, self.case_id = device, path, case_id
        self.archive_password = archive_password  # for encrypted zips on the medium
        self.label = label or device or str(path)
        self.progress: ImportProgress | None = None
        self.cancel_event = threading.Event()
        self.busy = True

    def compose_body(self) -> ComposeResult:
        with Vertical(id="import-body", classes="panel"):
            yield Static(id="import-from", classes="section", markup=False)
            yield Static(id="import-phase")
            yield ProgressBar(id="import-bar", show_eta=False)
            yield Static(id="import-files")
            yield Static(id="import-bytes")
            yield Static(id="import-speed")
            yield Static(id="import-eta")
            yield Static(id="import-current", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.run_import()

    def on_unmount(self) -> None:
        self.cancel_event.set()  # leaving the screen (idle reset) never leaves a copy running

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def run_import(self) -> None:
        """Copy and verify in this thread; only messages go back to the UI."""
        last_time, last_phase = 0.0, ""

        def on_progress(p: ImportProgress) -> None:
            nonlocal last_time, last_phase
            now = time.monotonic()
            if p.phase == last_phase and now - last_time < PROGRESS_INTERVAL:
                return  # coalesce: at most ~10 redraws a second, every phase change shown
            last_time, last_phase = now, p.phase
            self.post_message(ImportProgressed(p))

        service = self.service
        try:
            if self.device is not None:
                report = service.import_medium(self.device, case_id=self.case_id,
                                               on_progress=on_progress, cancel=self.cancel_event,
                                               archive_password=self.archive_password)
            else:
                report = service.import_path(self.path or "", case_id=self.case_id,
                                             on_progress=on_progress, cancel=self.cancel_event,
                                             archive_password=self.archive_password)
        except ImportCancelled as exc:
            self.post_message(WorkFailed("import", exc))
            return
        except Exception as exc:  # every failure becomes a dialog; the kiosk keeps running
            # The label or folder may be the patient's name: the device node or a hash.
            log.exception("import from %s into %s failed: %s",
                          self.device or f"folder {digest(str(self.path))}",
                          self.case_id or "a new case", error_kind(exc))
            self.post_message(WorkFailed("import", exc))
            return
        self.post_message(WorkDone("import", report))

    def on_import_progressed(self, message: ImportProgressed) -> None:
        self.progress = message.progress
        self.redraw()

    def on_work_done(self, message: WorkDone) -> None:
        self.busy = False
        self.dismiss(message.result)

    def on_work_failed(self, message: WorkFailed) -> None:
        self.busy = False
        if isinstance(message.error, ImportCancelled):
            dialog = ErrorDialog(("import.cancelled_title", {}), ("import.cancelled_text", {}))
        else:
            dialog = ErrorDialog(*error_say(message.error))
        self.app.push_screen(dialog, self._close)

    def _close(self, _result: object = None) -> None:
        self.dismiss(None)

    def redraw(self) -> None:
        self.query_one("#import-from", Static).update(self.tr("import.from", label=self.label))
        p = self.progress
        phase = p.phase if p else "counting"
        if self.cancel_event.is_set() and self.busy:
            self.query_one("#import-phase", Static).update(self.tr("import.cancelling"))
        else:
            self.query_one("#import-phase", Static).update(self.tr(f"import.phase.{phase}"))
        bar = self.query_one("#import-bar", ProgressBar)
        if p is None or p.bytes_total == 0:
            bar.update(total=None)
        else:
            bar.update(total=p.bytes_total, progress=p.bytes_done)
        done_files, total_files = (p.files_done, p.files_total) if p else (0, 0)
        self.query_one("#import-files", Static).update(
            self.tr("import.files", done=done_files, total=total_files or "…"))
        self.query_one("#import-bytes", Static).update(self.tr(
            "import.bytes", done=fmt.megabytes(p.bytes_done if p else 0),
            total=fmt.megabytes(p.bytes_total) if p and p.bytes_total else "…"))
        rate = fmt.rate(p.bytes_done, p.elapsed) if p else 0.0
        self.query_one("#import-speed", Static).update(self.tr("import.speed", rate=rate))
        eta = fmt.eta_seconds(p.bytes_done, p.bytes_total, p.elapsed) if p else None
        self.query_one("#import-eta", Static).update(
            self.tr("import.eta_unknown") if eta is None
            else self.tr("import.eta", eta=fmt.duration(eta, self.kiosk.lang)))
        width = max(20, self.size.width - 16)
        self.query_one("#import-current", Static).update(
            self.tr("import.current", path=fmt.shorten(p.current, width) if p else ""))

    def action_cancel(self) -> None:
        self.cancel_event.set()
        self.redraw()

