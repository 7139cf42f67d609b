"""Reports: the Chinese original and the English translation — missing, pending or synced.

A PDF found on the hospital medium can be attached as the original (or, rarely, as a
translation). "Check translations" starts a sync round now: the office inbox and the cloud are
looked at and new translations merged; the screen refreshes when the round reports back.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from kiosk.media.medium import Role
from kiosk.security.logfile import digest, error_kind
from kiosk_tui import fmt
from kiosk_tui.base import LANGUAGE_BINDING, KioskModal, KioskScreen
from kiosk_tui.dialogs import ErrorDialog, error_say
from kiosk_tui.messages import WorkDone, WorkFailed
from kiosk_tui.widgets import KeyBar, PickList

log = logging.getLogger(__name__)

#: (device, label, path on the medium)
Candidate = tuple[str, str, str]


class ReportsScreen(KioskScreen[None]):
    """Status of a case's reports; attach one from the medium."""

    TITLE_KEY = "reports.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "attach", "k.attach", key_display="A"),
        Binding("s", "check_now", "k.check_now", key_display="S"),
        Binding("escape", "back", "k.back", key_display="Esc"),
    ]

    def __init__(self, case_id: str) -> None:
        super().__init__(id="reports")
        self.case_id = case_id
        self.status: list[dict[str, Any]] = []

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="reports-body"):
            yield Static(id="reports-case", classes="section")
            yield Static(id="reports-original")
            yield Static(id="reports-translation")
            yield Static(id="reports-help", classes="hint")

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "sync_status", self._reload, init=False)
        self.load()

    def _reload(self, _value: object = None) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="reports", exit_on_error=False)
    def load(self) -> None:
        """Read the reports' status off the event loop."""
        self.post_message(WorkDone("status", self.service.report_status(self.case_id)))

    @work(thread=True, exclusive=True, group="reports-medium", exit_on_error=False)
    def find_candidates(self, media: list[tuple[str, str]]) -> None:
        """PDFs on the inserted hospital media (read-only look)."""
        found: list[Candidate] = []
        try:
            for device, label in media:
                found += [(device, label, path)
                          for path in self.service.report_files_on_medium(device)]
        except Exception as exc:
            # Devices and the error kind only: medium paths may carry the patient's name.
            log.warning("cannot list PDFs on %s: %s", ", ".join(d for d, _l in media),
                        error_kind(exc), exc_info=True)
            self.post_message(WorkFailed("candidates", exc))
            return
        self.post_message(WorkDone("candidates", found))

    @work(thread=True, exclusive=True, group="reports-medium", exit_on_error=False)
    def attach(self, device: str, path: str, language: str, role: str) -> None:
        """Merge the chosen PDF (stores it and builds its Encapsulated PDF instance)."""
        try:
            report = self.service.attach_report_from_medium(
                self.case_id, device, path, language=language, role=role)
        except Exception as exc:
            log.warning("cannot attach PDF %s from %s to case %s: %s", digest(path), device,
                        self.case_id, error_kind(exc), exc_info=True)
            self.post_message(WorkFailed("attach", exc))
            return
        self.post_message(WorkDone("attached", report))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "status":
            self.status = message.result
            self.redraw()
        elif message.job == "candidates":
            if not message.result:
                self.notify(self.tr("reports.none_found"), severity="warning", timeout=8)
                return
            self.app.push_screen(PickReportDialog(message.result), self._picked)
        elif message.job == "attached":
            self.notify(self.tr("reports.attached", title=message.result["title"]))
            self.load()

    def on_work_failed(self, message: WorkFailed) -> None:
        self.app.push_screen(ErrorDialog(*error_say(message.error)))

    def _picked(self, choice: tuple[str, str, str, str] | None) -> None:
        if choice is not None:
            self.attach(*choice)

    def redraw(self) -> None:
        self.query_one("#reports-case", Static).update(self.tr("case.title", case=self.case_id))
        by_role = {s["role"]: s for s in self.status}
        for role, title_key in (("original", "reports.original"),
                                ("translation", "reports.translation")):
            entry = by_role.get(role)
            widget = self.query_one(f"#reports-{role}", Static)
            if entry is None:
                widget.update(f"[b]{self.tr(title_key)}[/b]: …")
                continue
            colour = {"missing": "red", "pending": "yellow", "synced": "green"}[entry["state"]]
            state = self.tr("state." + entry["state"])
            lines = [f"[b]{self.tr(title_key)}[/b]: [{colour}]{state}[/]"]
            for r in entry["reports"]:
                line = self.tr("reports.item", title=r["title"],
                               source=self.tr(f"source.{r['source']}"),
                               time=fmt.local_time(r.get("received")))
                if r.get("certified") and "certified" not in r["title"].lower():
                    line += " · " + self.tr("reports.certified")
                lines.append("  • " + escape(line))
            widget.update("\n".join(lines))
        self.query_one("#reports-help", Static).update(self.tr("reports.help"))

    def action_attach(self) -> None:
        media = [(m.device, m.label or m.device) for m in self.kiosk.media
                 if m.role is Role.SOURCE]
        if not media:
            self.notify(self.tr("reports.none_found"), severity="warning", timeout=8)
            return
        self.find_candidates(media)

    def action_check_now(self) -> None:
        self.kiosk.wake_sync()
        self.notify(self.tr("reports.checking"))

    def action_back(self) -> None:
        self.dismiss(None)


class PickReportDialog(KioskModal[tuple[str, str, str, str] | None]):
    """Pick a PDF from the medium and say what it is; returns (device, path, language, role)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "switch_kind", "k.switch_kind", key_display="T"),
        Binding("escape", "cancel", "k.cancel", key_display="Esc"),
        LANGUAGE_BINDING,
    ]

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__(classes="dialog wide-dialog")
        self.candidates = candidates
        self.as_translation = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield PickList(*[Option(f"{label}: {path}", id=str(i))
                             for i, (_dev, label, path) in enumerate(self.candidates)],
                           id="pdfs", markup=False)
            yield Static(id="pick-kind", classes="section")
            yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#pdfs", OptionList).focus()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("reports.pick_title"))
        self.query_one("#pick-kind", Static).update(self.tr(
            "reports.as_translation" if self.as_translation else "reports.as_original"))

    def action_switch_kind(self) -> None:
        self.as_translation = not self.as_translation
        self.redraw()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        device, _label, path = self.candidates[event.option_index]
        language, role = ("en", "translation") if self.as_translation else ("zh", "original")
        self.dismiss((device, path, language, role))

    def action_cancel(self) -> None:
        self.dismiss(None)
