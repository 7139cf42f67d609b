"""Export: the patient's stick — insert, free-space check, confirm, write, read back, remove.

States: ``waiting`` for a stick → ``preparing`` (mount, measure) → ``ready`` (the coordinator
confirms; unencrypted only with the patient's consent) → ``writing`` (progress, cancel) →
``finished`` ("remove the stick"; pulling it, or Enter, goes on). Returns the export report
(the passphrase is in it, and only there) or None when the coordinator went back.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from kiosk.errors import KioskError
from kiosk.media.medium import MediaAction, MediaEvent, Medium, Role
from kiosk.security.logfile import error_kind
from kiosk_tui import fmt
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ConfirmDialog, ErrorDialog, error_say
from kiosk_tui.messages import ExportProgressed, WorkDone, WorkFailed

if TYPE_CHECKING:  # kiosk.package.export loads the AES machinery: only when an export runs
    from kiosk.package.aeszip import KeySupply
    from kiosk.package.export import ExportProgress

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1


class ExportScreen(KioskScreen[dict[str, Any] | None]):
    """Writes case ``case_id`` to the patient's own stick."""

    TITLE_KEY = "export.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "write", "k.write", key_display="Enter"),
        Binding("enter", "finish", "k.continue", key_display="Enter"),
        Binding("u", "unencrypted", "k.unencrypted", key_display="U"),
        Binding("u", "encrypted", "k.encrypted", key_display="U"),
        Binding("o", "use_anyway", "k.use_anyway", key_display="O"),
        Binding("escape", "cancel", "k.cancel", key_display="Esc"),
        Binding("escape", "escape", "k.back", key_display="Esc"),
    ]

    def __init__(self, case_id: str) -> None:
        super().__init__(id="export")
        self.case_id = case_id
        self.state = "waiting"
        self.device: str | None = None
        self.medium: Medium | None = None
        self.target: Path | None = None
        self.check: dict[str, Any] | None = None
        self.encrypt = True
        self.progress: ExportProgress | None = None
        self.report: dict[str, Any] | None = None
        self.note = ""  # e.g. "that stick holds DICOM: not written to"
        #: A stick taken for a hospital medium (it holds DICOM); the coordinator may override.
        self.refused: Medium | None = None
        self.cancel_event = threading.Event()
        #: The entry keys of the encrypted export, derived from the moment a stick is ready
        #: (see KioskService.prepare_export); handed to the export, or closed.
        self.keys: KeySupply | None = None

    @property
    def demo_offers(self) -> frozenset[str]:  # type: ignore[override]
        """The demo's stick may be inserted while waiting for one."""
        return frozenset({"stick"}) if self.state == "waiting" else frozenset()

    @property
    def busy(self) -> bool:  # type: ignore[override]
        """Writing must never be interrupted by the idle timer."""
        return self.state in ("preparing", "writing")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="export-body", classes="panel"):
            yield Static(id="export-headline", classes="section")
            yield Static(id="export-text", markup=False)
            yield ProgressBar(id="export-bar", show_eta=False)
            yield Static(id="export-detail", markup=False)
            yield Static(id="export-note", classes="hint", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        for medium in self.kiosk.media:
            if medium.role is Role.TARGET:
                self.prepare(medium)
                break

    def on_unmount(self) -> None:
        self.cancel_event.set()
        self._drop_keys()

    # --- media --------------------------------------------------------------------------------

    def media_event(self, event: MediaEvent) -> None:
        medium = event.medium
        if event.action is MediaAction.INSERT and self.state == "waiting":
            if medium.role is Role.TARGET:
                self.prepare(medium)
            elif medium.role is Role.SOURCE:
                self.refused = medium
                self.note = self.tr("export.source_ignored", label=medium.label or medium.device)
                self.redraw()
        elif event.action is MediaAction.REMOVE and self.refused is not None \
                and medium.device == self.refused.device:
            self.refused, self.note = None, ""
            self.redraw()
        elif event.action is MediaAction.REMOVE and medium.device == self.device:
            if self.state == "finished":
                self.dismiss(self.report)
            elif self.state == "ready":
                self._reset()  # pulled before writing: wait for a stick again

    def prepare(self, medium: Medium) -> None:
        """Mount the stick and measure it (in a worker: mounting can take seconds)."""
        self.state, self.device, self.medium, self.note = "preparing", medium.device, medium, ""
        self.refused = None
        self.redraw()
        self.run_prepare(medium.device)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_prepare(self, device: str) -> None:
        """Open the stick writable and compare its free space with the package."""
        media = self.service.media
        try:
            assert media is not None, "the app always attaches media"
            target = media.open_target(device)
            check = self.service.export_check(self.case_id, target)
            # The keys now: the coordinator reads the screen and confirms meanwhile.
            keys = self.service.prepare_export(self.case_id)
        except Exception as exc:
            log.warning("cannot use %s for the export of %s: %s", device, self.case_id,
                        error_kind(exc), exc_info=True)
            if media is not None:
                media.release(device)
            self.post_message(WorkFailed("prepare", exc))
            return
        self.post_message(WorkDone("prepared", (target, check, keys)))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_export(self, device: str, target: Path, encrypt: bool,
                   keys: KeySupply | None) -> None:
        """Write, read back, then eject; the report comes back as a message."""
        last_time, last_phase = 0.0, ""

        def on_progress(p: ExportProgress) -> None:
            nonlocal last_time, last_phase
            now = time.monotonic()
            if p.phase == last_phase and now - last_time < PROGRESS_INTERVAL:
                return  # coalesce: at most ~10 redraws a second, every phase change shown
            last_time, last_phase = now, p.phase
            self.post_message(ExportProgressed(p))

        media = self.service.media
        try:
            report = self.service.export_case(self.case_id, target, encrypt=encrypt,
                                              on_progress=on_progress, cancel=self.cancel_event,
                                              keys=keys)
        except Exception as exc:
            if not isinstance(exc, KioskError):
                log.exception("export of %s failed", self.case_id)
            if media is not None:
                media.release(device)
            self.post_message(WorkFailed("export", exc))
            return
        if media is not None:
            try:
                media.eject(device)  # flushes and powers the stick down: safe to pull
            except KioskError as exc:  # still verified; the prompt says to remove it anyway
                log.warning("eject of %s failed: %s", device, error_kind(exc))
        self.post_message(WorkDone("exported", report))

    # --- messages -------------------------------------------------------------------------

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "prepared":
            target, check, keys = message.result
            if self.state != "preparing":  # the stick went, or the screen is leaving
                keys.close()
                return
            self.target, self.check, self.keys = target, check, keys
            self.state = "ready"
        elif message.job == "exported":
            self.report = message.result
            self.state = "finished"
            if self.device not in {m.device for m in self.kiosk.media}:
                self.dismiss(self.report)  # already pulled (or ejected by a simulation)
                return
        self.redraw()

    def on_work_failed(self, message: WorkFailed) -> None:
        self._reset()
        self.app.push_screen(ErrorDialog(*error_say(message.error)))

    def on_export_progressed(self, message: ExportProgressed) -> None:
        self.progress = message.progress
        self.redraw()

    def _reset(self) -> None:
        self.state, self.device, self.medium, self.target, self.check = (
            "waiting", None, None, None, None)
        self.progress = None
        self.cancel_event = threading.Event()
        self._drop_keys()  # a new stick gets a new passphrase
        self.redraw()

    def _drop_keys(self) -> None:
        if self.keys is not None:
            self.keys.close()
            self.keys = None

    # --- drawing --------------------------------------------------------------------------

    def redraw(self) -> None:
        headline = self.query_one("#export-headline", Static)
        text = self.query_one("#export-text", Static)
        detail = self.query_one("#export-detail", Static)
        bar = self.query_one("#export-bar", ProgressBar)
        bar.display = self.state == "writing"
        self.query_one("#export-note", Static).update(self.note)
        if self.state == "waiting":
            headline.update(self.tr("export.insert"))
            text.update(self.tr("export.insert_sub"))
            detail.update("")
        elif self.state == "preparing":
            headline.update(self.tr("export.preparing"))
            text.update(self._stick_label())
            detail.update("")
        elif self.state == "ready" and self.check is not None:
            check = self.check
            headline.update(self.tr("export.ready"))
            lines = [self.tr("export.stick", label=self._stick_label(),
                             free=fmt.megabytes(check["free"])),
                     self.tr("export.needed", needed=fmt.megabytes(check["needed"]),
                             n=check["instances"])]
            if check["others"]:
                lines.append(self.tr("export.others", n=check["others"]))
            lines.append("")
            lines.append(self.tr("export.mode_enc" if self.encrypt else "export.mode_plain"))
            text.update("\n".join(lines))
            detail.update(self.tr("export.press_enter") if check["enough"] else self.tr(
                "export.no_space", free=fmt.megabytes(check["free"]),
                needed=fmt.megabytes(check["needed"])))
        elif self.state == "writing":
            p = self.progress
            headline.update(self.tr(f"export.phase.{p.phase if p else 'checking'}"))
            text.update(self._stick_label())
            if p is not None and p.bytes_total:
                bar.update(total=p.bytes_total, progress=p.bytes_done)
                detail.update(self.tr("export.progress", done=fmt.megabytes(p.bytes_done),
                                      total=fmt.megabytes(p.bytes_total),
                                      rate=fmt.rate(p.bytes_done, p.elapsed)))
        elif self.state == "finished":
            headline.update(self.tr("export.remove"))
            text.update(self._stick_label())
            detail.update(self.tr("export.remove_sub"))
        self.refresh_bindings()

    def _stick_label(self) -> str:
        medium = self.medium
        if medium is None:
            return ""
        parts = [medium.label or "", medium.vendor or "", medium.model or ""]
        return " · ".join(p for p in parts if p) or medium.device

    # --- keys -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "write":
            if self.state == "ready":
                return True if self.check and self.check["enough"] else None
            return False
        if action == "finish":
            return self.state == "finished"
        if action == "cancel":
            return self.state == "writing"
        if action == "escape":
            return self.state != "writing"
        if action == "use_anyway":
            return self.state == "waiting" and self.refused is not None
        if action == "unencrypted":
            return self.state == "ready" and self.encrypt
        if action == "encrypted":
            return self.state == "ready" and not self.encrypt
        return True

    def action_finish(self) -> None:
        if self.state == "finished":
            self.dismiss(self.report)

    def action_write(self) -> None:
        if (self.state == "ready" and self.check and self.check["enough"]
                and self.device and self.target):
            self.state = "writing"
            self.redraw()
            keys, self.keys = self.keys, None  # the export closes them when it ends
            if not self.encrypt and keys is not None:
                keys.close()
                keys = None
            self.run_export(self.device, self.target, self.encrypt, keys)

    def action_encrypted(self) -> None:
        self.encrypt = True
        self.redraw()

    def action_unencrypted(self) -> None:
        """Only with the patient's consent and the coordinator PIN (an override of the safe
        default: the PIN attempt and the export's ``encrypted=False`` are both audited)."""

        def granted() -> None:
            if self.state == "ready":
                self.encrypt = False
                self.redraw()

        def answered(yes: bool | None) -> None:
            if yes:
                self.kiosk.require_pin("unencrypted_export", granted, case_id=self.case_id)

        self.app.push_screen(ConfirmDialog(("consent.title", {}), ("consent.text", {})),
                             answered)

    def action_use_anyway(self) -> None:
        """The patient's own stick holds DICOM (an earlier visit): write beside it, on consent."""
        refused = self.refused
        media = self.service.media
        if refused is None or media is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes or media is None:
                return
            try:
                event = media.set_role(refused.device, Role.TARGET)
            except KioskError as exc:
                self.app.push_screen(ErrorDialog(*error_say(exc)))
                return
            self.prepare(event.medium)

        self.app.push_screen(ConfirmDialog(("export.override_title", {}),
                                           ("export.override_text", {})), answered)

    def action_cancel(self) -> None:
        if self.state == "writing":
            self.cancel_event.set()  # the worker reports "Export cancelled" and we start over

    def action_escape(self) -> None:
        if self.state == "finished":
            self.dismiss(self.report)
            return
        if self.device is not None and self.service.media is not None:
            self.service.media.release(self.device)
        self.dismiss(None)
