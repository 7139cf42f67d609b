"""Home: "insert a disc", the newest cases (numbers only: no patient data while idle), cloud status.

The list is a page of the case index (:meth:`kiosk.service.KioskService.case_summaries`), never
built from every case: the newest :data:`PAGE` at once, the next page when the cursor reaches the
bottom. ``/`` (or Ctrl+F) opens the find box: typing a case number, a patient's name (Latin or
Chinese) or a date narrows the list as you type; Esc clears it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from kiosk.media.medium import MediaAction, MediaEvent, Role
from kiosk_tui import fmt
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ErrorDialog
from kiosk_tui.messages import WorkDone

#: Rows read at a time.
PAGE = 20


class CaseTable(DataTable[str]):
    """The newest (or the found) cases; Enter opens the highlighted one (and says so)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "k.open_case", key_display="Enter")]


class HomeScreen(KioskScreen[None]):
    """The start screen; what a patient walking up to the desk sees."""

    TITLE_KEY = "home.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "admin", "k.admin", key_display="F9"),
        Binding("slash,ctrl+f", "find", "k.find", key_display="/"),
    ]
    demo_offers = frozenset({"disc"})

    def __init__(self) -> None:
        super().__init__(id="home")
        self.cases: list[dict[str, Any]] = []
        #: What the find box holds ("" lists the newest cases).
        self.find = ""
        self.limit = PAGE
        self.total = 0

    def compose_body(self) -> ComposeResult:
        with Vertical(id="home-body"):
            yield Static(id="insert-prompt")
            yield Static(id="insert-sub")
            yield Static(id="today-title", classes="section")
            box = Input(id="find", placeholder="")
            # Hidden (so never focused) until "/" opens it: D, M and S stay the demo's keys.
            box.display = False
            box.can_focus = False
            yield box
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

    def load_cases(self) -> None:
        """Read a page of cases (the newest, or those matching the find box) off the loop."""
        self._read_cases(self.find, self.limit)

    @work(thread=True, exclusive=True, group="home-cases", exit_on_error=False)
    def _read_cases(self, find: str, limit: int) -> None:
        cases, total = self.service.case_page(limit=limit, find=find or None)
        self.post_message(WorkDone("cases", (find, cases, total)))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "cases":
            find, cases, total = message.result
            if find != self.find:
                return  # typed on since: a newer read is on its way
            self.cases, self.total = cases, total
            self.redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.find = event.value.strip()
        self.limit = PAGE
        self.load_cases()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        table = self.query_one("#today", CaseTable)
        if self.cases:
            self.kiosk.open_case(self.cases[min(table.cursor_row, len(self.cases) - 1)]
                                 ["case_id"])

    def action_find(self) -> None:
        box = self.query_one("#find", Input)
        box.display = box.can_focus = True
        box.focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#find", Input)
        if self.focused is not box:
            return
        table = self.query_one("#today", CaseTable)
        if event.key == "escape":
            event.stop()
            box.value = ""
            box.display = box.can_focus = False
            if self.cases:
                table.focus()
            else:
                self.set_focus(None)
        elif event.key in ("down", "up") and self.cases:
            event.stop()
            step = 1 if event.key == "down" else -1
            table.move_cursor(row=max(0, min(len(self.cases) - 1, table.cursor_row + step)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        # The next page, when the cursor reaches the last row and there is more.
        if event.cursor_row >= len(self.cases) - 1 and len(self.cases) < self.total \
                and self.limit <= len(self.cases):
            self.limit += PAGE
            self.load_cases()

    def redraw(self) -> None:
        self.query_one("#insert-prompt", Static).update(self.tr("home.insert"))
        self.query_one("#insert-sub", Static).update(self.tr("home.insert_sub"))
        title = self.tr("home.found", text=self.find) if self.find else self.tr("home.today")
        if self.total > len(self.cases):
            title += "  " + self.tr("home.count", shown=len(self.cases), total=self.total)
        self.query_one("#today-title", Static).update(title)
        box = self.query_one("#find", Input)
        box.placeholder = self.tr("home.find_placeholder")
        table = self.query_one("#today", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        for key in ("col.time", "col.case", "col.images", "col.mod", "col.status"):
            table.add_column(self.tr(key))
        for case in self.cases:
            status = "delivered" if case.get("delivered") else case["status"]
            # Text, not str: a cell string would be parsed as markup (a case number or
            # modality holding "[" would be read as a style), and parsing costs per cell.
            cells = (fmt.local_when(case.get("created")), case["case_id"],
                     str(case["instances"]), "/".join(case["modalities"]),
                     self.tr(f"status.{status}"))
            table.add_row(*(Text(c) for c in cells), key=case["case_id"])
        if self.cases:
            table.move_cursor(row=min(row, len(self.cases) - 1))
        table.display = bool(self.cases)
        if self.cases and self.focused is None:
            table.focus()  # Enter opens the highlighted case
        elif not self.cases and self.focused is table:
            self.set_focus(None)  # no "Enter: open case" while there is nothing to open
        empty = self.query_one("#today-empty", Static)
        empty.update(self.tr("home.none_found", text=self.find) if self.find
                     else self.tr("home.none_today"))
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
