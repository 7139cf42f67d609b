"""Home: "insert a disc", today's cases (numbers only: no patient data while idle), cloud status."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from kiosk.media.medium import MediaAction, MediaEvent, Role
from kiosk_tui import fmt
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ErrorDialog
from kiosk_tui.messages import WorkDone


class CaseTable(DataTable[str]):
    """Today's cases; Enter opens the highlighted one (and says so in the key bar)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "k.open_case", key_display="Enter")]


class HomeScreen(KioskScreen[None]):
    """The start screen; what a patient walking up to the desk sees."""

    TITLE_KEY = "home.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "admin", "k.admin", key_display="F9"),
    ]
    demo_offers = frozenset({"disc"})

    def __init__(self) -> None:
        super().__init__(id="home")
        self.cases: list[dict[str, Any]] = []

    def compose_body(self) -> ComposeResult:
        with Vertical(id="home-body"):
            yield Static(id="insert-prompt")
            yield Static(id="insert-sub")
            yield Static(id="today-title", classes="section")
            table = CaseTable(id="today", cursor_type="row", zebra_stripes=True)
            table.display = False  # until today's cases are read
            yield table
            yield Static(id="today-empty")

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "sync_status", self._status_changed, init=False)
        self.load_cases()

    def on_screen_resume(self) -> None:
        self.load_cases()
        if self.kiosk.flow_running:
            return  # Home only shows for a moment between two screens of a flow
        # A disc inserted while a dialog was open, or left in when the kiosk started.
        for medium in self.kiosk.media:
            if medium.role is Role.SOURCE and self.kiosk.media_unused(medium):
                self.kiosk.start_import(medium)
                break

    def _status_changed(self, _status: object) -> None:
        self.load_cases()  # a round may have merged a translation or finished an upload

    @work(thread=True, exclusive=True, group="home-cases", exit_on_error=False)
    def load_cases(self) -> None:
        """Read today's cases off the event loop (the database is a file read each time)."""
        cases = [c for c in self.service.case_summaries() if fmt.is_today(c.get("created"))]
        self.post_message(WorkDone("cases", cases))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "cases":
            self.cases = message.result
            self.redraw()

    def redraw(self) -> None:
        self.query_one("#insert-prompt", Static).update(self.tr("home.insert"))
        self.query_one("#insert-sub", Static).update(self.tr("home.insert_sub"))
        self.query_one("#today-title", Static).update(self.tr("home.today"))
        table = self.query_one("#today", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        for key in ("col.time", "col.case", "col.images", "col.mod", "col.status"):
            table.add_column(self.tr(key))
        for case in self.cases:
            status = "delivered" if case.get("delivered") else case["status"]
            table.add_row(fmt.local_time(case.get("created")), case["case_id"],
                          str(case["instances"]), "/".join(case["modalities"]),
                          self.tr(f"status.{status}"), key=case["case_id"])
        if self.cases:
            table.move_cursor(row=min(row, len(self.cases) - 1))
        table.display = bool(self.cases)
        if self.cases and self.focused is None:
            table.focus()  # Enter opens the highlighted case
        elif not self.cases and self.focused is table:
            self.set_focus(None)  # no "Enter: open case" while there is nothing to open
        empty = self.query_one("#today-empty", Static)
        empty.update(self.tr("home.none_today"))
        empty.display = not self.cases
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.kiosk.open_case(event.row_key.value)

    def action_admin(self) -> None:
        self.kiosk.open_admin()

    def media_event(self, event: MediaEvent) -> None:
        if event.action is not MediaAction.INSERT:
            return
        medium = event.medium
        if medium.role is Role.SOURCE:
            self.kiosk.start_import(medium)
        elif medium.role is Role.TARGET:
            self.notify(self.tr("home.stick_first"), timeout=8)
        else:
            label = medium.label or medium.device
            self.app.push_screen(ErrorDialog(
                ("home.unknown_title", {}),
                ("home.unknown_text", {"label": label, "reason": medium.role_reason})))
