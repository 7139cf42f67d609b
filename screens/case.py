"""Case: whose images these are (passport name, date of birth, case number), then what next.

Several patients on one medium are resolved explicitly: each is marked as the person at the
desk or someone else (moved to a separate case) before the identity can be confirmed, and only
a confirmed case can be exported. Keeping several patient IDs as the one person overrides that
check: it needs the coordinator PIN. "Add another disc" waits for the next medium and merges it
into this case (as ``kiosk import SOURCE --case ID`` does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from kiosk.errors import KioskError
from kiosk.media.medium import MediaAction, MediaEvent, Role
from kiosk_tui import fmt
from kiosk_tui.base import LANGUAGE_BINDING, KioskModal, KioskScreen
from kiosk_tui.dialogs import ErrorDialog, error_say
from kiosk_tui.messages import WorkDone, WorkFailed
from kiosk_tui.widgets import FormInput, KeyBar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseAction:
    """What the coordinator chose on the Case screen."""

    kind: str  # "home" | "add" (another medium: ``device``) | "export" | "reports"
    device: str | None = None


class CaseScreen(KioskScreen[CaseAction]):
    """One case: its patients, identity, reports status; the way to export."""

    TITLE_KEY = "case.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "confirm", "k.confirm_id", key_display="C"),
        Binding("t", "toggle_patient", "k.toggle_patient", key_display="T"),
        Binding("r", "leave('reports')", "k.reports", key_display="R"),
        Binding("a", "add_disc", "k.add_disc", key_display="A"),
        Binding("e", "leave('export')", "k.export", key_display="E"),
        Binding("escape", "stop_waiting", "k.stop_waiting", key_display="Esc"),
        Binding("escape", "leave('home')", "k.home", key_display="Esc"),
    ]

    def __init__(self, case_id: str) -> None:
        super().__init__(id="case")
        self.case_id = case_id
        self.detail: dict[str, Any] | None = None
        self.reports: list[dict[str, Any]] = []
        #: patient id -> True (this person), False (someone else), None (not decided yet).
        self.decisions: dict[str, bool | None] = {}
        self.waiting = False  # for another disc of this case

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="case-body"):
            yield Static(id="case-summary")
            yield Static(id="case-patients-title", classes="section")
            yield DataTable(id="case-patients", cursor_type="row")
            yield Static(id="case-help", classes="hint")
            yield Static(id="case-identity", classes="verdict")
            yield Static(id="case-reports")
            yield Static(id="case-next", classes="hint")
        yield Static(id="case-waiting", classes="panel waiting")

    def title_values(self) -> dict[str, object]:
        return {"case": self.case_id}

    def on_mount(self) -> None:
        super().on_mount()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="case", exit_on_error=False)
    def load(self) -> None:
        """The case and its reports' status, read off the event loop."""
        try:
            detail = self.service.case_detail(self.case_id)
            reports = self.service.report_status(self.case_id)
        except Exception as exc:  # the case vanished (purged from Admin in another window)
            log.exception("cannot read case %s", self.case_id)
            self.post_message(WorkFailed("case", exc))
            return
        self.post_message(WorkDone("case", (detail, reports)))

    def on_work_done(self, message: WorkDone) -> None:
        first = self.detail is None
        self.detail, self.reports = message.result
        confirmed = set((self.detail.get("identity") or {}).get("patient_ids", []))
        ids = self.patient_ids()
        for pid in ids:
            if pid in confirmed or len(ids) == 1:
                self.decisions.setdefault(pid, True)
            else:
                self.decisions.setdefault(pid, None)
        self.redraw()
        if first and len(ids) > 1 and not self.confirmed:
            self.query_one("#case-patients").focus()  # arrows pick the row T decides

    def on_work_failed(self, message: WorkFailed) -> None:
        self.app.push_screen(ErrorDialog(*error_say(message.error)), self._go_home)

    def _go_home(self, _result: object = None) -> None:
        self.dismiss(CaseAction("home"))

    def patient_ids(self) -> list[str]:
        """Distinct patient ids in the case, in the order they were imported."""
        seen: dict[str, None] = {}
        for p in (self.detail or {}).get("patients", []):
            seen.setdefault(p["patient_id"], None)
        return list(seen)

    @property
    def confirmed(self) -> bool:
        """Whether the identity was confirmed (for the patients now in the case)."""
        identity = (self.detail or {}).get("identity")
        return identity is not None and set(identity["patient_ids"]) == set(self.patient_ids())

    def redraw(self) -> None:
        waiting = self.query_one("#case-waiting", Static)
        waiting.display = self.waiting
        waiting.update(self.tr("case.waiting"))
        self.query_one("#case-body").display = not self.waiting
        detail = self.detail
        if detail is None:
            return
        studies = detail["studies"]
        status = "delivered" if detail.get("delivered") else detail.get("status", "incomplete")
        self.query_one("#case-summary", Static).update(self.tr(
            "case.summary", n=sum(s["instances"] for s in studies), studies=len(studies),
            mods="/".join(sorted({m for s in studies for m in s.get("modalities", [])})),
            status=self.tr(f"status.{status}")))
        self.query_one("#case-patients-title", Static).update(self.tr("case.patients"))
        self._fill_patients()
        several = len(self.patient_ids()) > 1
        help_text = self.query_one("#case-help", Static)
        help_text.update(self.tr("case.several_help"))
        help_text.display = several and not self.confirmed
        identity = detail.get("identity")
        if self.confirmed and identity:
            text = self.tr("case.identity_ok", name=identity["passport_name"],
                           dob=identity["birth_date"])
            verdict = f"[green]{escape(text)}[/]"
        else:
            verdict = f"[yellow]{self.tr('case.identity_none')}[/]"
        self.query_one("#case-identity", Static).update(verdict)
        states = {r["role"]: self.tr(f"state.{r['state']}") for r in self.reports}
        self.query_one("#case-reports", Static).update(self.tr(
            "case.reports", orig=states.get("original", "?"), trans=states.get("translation", "?")))
        self.query_one("#case-next", Static).update(
            "" if self.confirmed else self.tr("case.need_identity"))
        self.refresh_bindings()

    def _fill_patients(self) -> None:
        table = self.query_one("#case-patients", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        for key in ("col.patient", "col.pid", "col.dob", "col.decision"):
            table.add_column(self.tr(key))
        names: dict[str, list[str]] = {}
        births: dict[str, str] = {}
        for p in (self.detail or {}).get("patients", []):
            names.setdefault(p["patient_id"], []).append(p["name_display"])
            births.setdefault(p["patient_id"], fmt.dicom_date(p.get("birth_date")))
        for pid in self.patient_ids():
            decision = self.decisions.get(pid)
            label = {True: "decision.yes", False: "decision.no"}.get(decision, "decision.unset")  # type: ignore[arg-type]
            table.add_row(" / ".join(names[pid]), pid, births[pid], self.tr(label), key=pid)
        if table.row_count:
            table.move_cursor(row=max(0, min(row, table.row_count - 1)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.waiting:  # only "stop waiting" (and the demo's discs) while a disc is awaited
            return action == "stop_waiting"
        if action == "stop_waiting":
            return False
        if action == "toggle_patient":
            return len(self.patient_ids()) > 1  # hidden for the usual single patient
        if action == "leave" and parameters == ("export",):
            return True if self.confirmed else None  # dimmed until the identity is confirmed
        return True

    @property
    def demo_offers(self) -> frozenset[str]:  # type: ignore[override]
        """The demo's discs may be inserted while waiting for another disc."""
        return frozenset({"disc", "disc2"}) if self.waiting else frozenset()

    def action_toggle_patient(self) -> None:
        table = self.query_one("#case-patients", DataTable)
        ids = self.patient_ids()
        if not ids or self.confirmed:
            return
        pid = ids[table.cursor_row]
        # ? -> this person -> someone else -> this person ...
        self.decisions[pid] = self.decisions.get(pid) is not True
        self.redraw()

    def action_confirm(self) -> None:
        ids = self.patient_ids()
        if any(self.decisions.get(pid) is None for pid in ids):
            self.notify(self.tr("case.need_decisions"), severity="warning")
            return
        keep = [pid for pid in ids if self.decisions[pid]]
        others = [pid for pid in ids if not self.decisions[pid]]
        if not keep:
            self.notify(self.tr("case.need_one"), severity="warning")
            return
        if len(keep) > 1:
            # Several patient IDs kept as one person (a hospital giving each exam its own ID,
            # or a mix-up): an override of the one-patient-per-case check, behind the PIN.
            self.kiosk.require_pin("keep_patients", lambda: self._confirm(keep, others),
                                   case_id=self.case_id)
            return
        self._confirm(keep, others)

    def _confirm(self, keep: list[str], others: list[str]) -> None:
        """Move ``others`` to a case of their own, then ask for the passport identity."""
        if others:
            try:
                new_case = self.service.split_patients(self.case_id, others)
            except KioskError as exc:
                self.app.push_screen(ErrorDialog(*error_say(exc)))
                return
            self.notify(self.tr("case.split_done", n=len(others), case=new_case), timeout=10)
            for pid in others:
                self.decisions.pop(pid, None)
        patients = [p for p in (self.detail or {}).get("patients", [])
                    if p["patient_id"] in keep]
        self.app.push_screen(IdentityDialog(self.case_id, patients), self._reload)

    def _reload(self, _result: object = None) -> None:
        self.load()

    def action_add_disc(self) -> None:
        self.waiting = True
        self.redraw()

    def action_stop_waiting(self) -> None:
        self.waiting = False
        self.redraw()

    def action_leave(self, kind: str) -> None:
        self.dismiss(CaseAction(kind))

    def media_event(self, event: MediaEvent) -> None:
        if (self.waiting and event.action is MediaAction.INSERT
                and event.medium.role is Role.SOURCE):
            self.kiosk.claim_medium(event.medium)  # before Home shows for a moment
            self.dismiss(CaseAction("add", event.medium.device))


class IdentityDialog(KioskModal[dict[str, Any] | None]):
    """Passport name and date of birth, checked against the passport; the case number shown.

    Returns the confirmed identity, or None when cancelled. The facade validates; its message
    (a date that is not a date, an empty name) appears under the fields.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", "k.next_field", key_display="Tab"),
        Binding("escape", "cancel", "k.cancel", key_display="Esc"),
        LANGUAGE_BINDING,
    ]

    def __init__(self, case_id: str, patients: list[dict[str, Any]]) -> None:
        super().__init__(classes="dialog wide-dialog")
        self.case_id = case_id
        self.patients = patients
        self.error = ""

    def compose(self) -> ComposeResult:
        first = self.patients[0] if self.patients else {}
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield Static(id="id-help")
            yield Static(id="id-on-disc", markup=False)
            yield Static(id="id-name-label")
            yield FormInput(fmt.passport_name_guess(first.get("name", "")), id="id-name",
                            compact=True)
            yield Static(id="id-dob-label")
            yield FormInput(fmt.dicom_date(first.get("birth_date")), id="id-dob",
                            placeholder="YYYY-MM-DD", max_length=10, compact=True)
            yield Static(id="id-case", classes="section")
            yield Static(id="id-error", classes="dialog-warning", markup=False)
            yield KeyBar()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("id.title"))
        self.query_one("#id-help", Static).update(self.tr("id.help"))
        names = ", ".join(p["name_display"] for p in self.patients)
        self.query_one("#id-on-disc", Static).update(self.tr("id.on_disc", names=names))
        self.query_one("#id-name-label", Static).update(self.tr("id.name"))
        self.query_one("#id-dob-label", Static).update(self.tr("id.dob"))
        self.query_one("#id-case", Static).update(self.tr("id.case", case=self.case_id))
        self.query_one("#id-error", Static).update(self.error)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#id-name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        """Have the facade check and record the identity; show its words if it refuses."""
        try:
            identity = self.kiosk.service.confirm_identity(
                self.case_id, passport_name=self.query_one("#id-name", Input).value,
                birth_date=self.query_one("#id-dob", Input).value)
        except KioskError as exc:
            self.error = exc.text
            self.redraw()
            return
        self.dismiss(identity)

    def action_cancel(self) -> None:
        self.dismiss(None)
