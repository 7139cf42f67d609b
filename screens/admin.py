"""Admin (behind the PIN): settings, the sync queue, purging cases, the audit trail and log.

Purge deletes a case through ``KioskService.purge_case`` after a confirmation; a case not
uploaded yet (the kiosk holds the only copy) also needs the coordinator PIN again. P changes the
PIN.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Static

from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ConfirmDialog, ErrorDialog, SetPinDialog, error_say
from kiosk_tui.messages import WorkDone, WorkFailed

log = logging.getLogger(__name__)


class AdminScreen(KioskScreen[None]):
    """The coordinator's back office."""

    TITLE_KEY = "admin.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "section('settings')", "k.settings", key_display="1"),
        Binding("2", "section('sync')", "k.queue", key_display="2"),
        Binding("3", "section('purge')", "k.purge_tab", key_display="3"),
        Binding("4", "section('logs')", "k.logs", key_display="4"),
        Binding("r", "retry", "k.retry", key_display="R"),
        Binding("n", "sync_now", "k.sync_now", key_display="N"),
        Binding("x", "purge", "k.purge", key_display="X"),
        Binding("p", "change_pin", "k.change_pin", key_display="P"),
        Binding("q", "app.shutdown", "k.shutdown", key_display="Q"),
        Binding("escape", "leave", "k.leave", key_display="Esc"),
    ]

    def __init__(self) -> None:
        super().__init__(id="admin")
        self.section = "settings"
        self.jobs: list[dict[str, Any]] = []
        self.cases: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.log_tail: list[str] = []

    def compose_body(self) -> ComposeResult:
        with ContentSwitcher(initial="settings", id="admin-sections"):
            with VerticalScroll(id="settings"):
                yield Static(id="settings-text", markup=False)
            with VerticalScroll(id="sync"):
                yield Static(id="sync-status", markup=False)
                yield DataTable(id="sync-jobs", cursor_type="row")
            with VerticalScroll(id="purge"):
                yield Static(id="purge-help", classes="hint")
                yield DataTable(id="purge-cases", cursor_type="row")
            with VerticalScroll(id="logs"):
                yield Static(id="logs-text")

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "sync_status", self._reload, init=False)
        self.load()

    def _reload(self, _value: object = None) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="admin", exit_on_error=False)
    def load(self) -> None:
        """Everything the sections show, read off the event loop."""
        service = self.service
        log_file = service.locations.logs_dir / "kiosk.log"
        try:
            tail = log_file.read_text("utf-8", errors="replace").splitlines()[-40:]
        except OSError:
            tail = []
        self.post_message(WorkDone("admin", {
            "jobs": service.sync_queue(), "cases": service.case_summaries(),
            "audit": service.recent_audit(50), "log": tail}))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "admin":
            data = message.result
            self.jobs, self.cases = data["jobs"], data["cases"]
            self.audit, self.log_tail = data["audit"], data["log"]
        elif message.job == "purged":
            self.notify(self.tr("admin.purged", case=message.result))
            self.load()
        elif message.job == "purge_check":
            self._confirm_purge(*message.result)
        self.redraw()

    def on_work_failed(self, message: WorkFailed) -> None:
        self.app.push_screen(ErrorDialog(*error_say(message.error)))

    def redraw(self) -> None:
        self.query_one("#settings-text", Static).update(self._settings_text())
        status = self.kiosk.sync_status
        self.query_one("#sync-status", Static).update(
            self.tr("admin.sync", state=status.state, message=status.message)
            if status else "…")
        jobs = self.query_one("#sync-jobs", DataTable)
        jobs.clear(columns=True)
        for key in ("col.job", "col.case", "col.state", "col.progress", "col.error"):
            jobs.add_column(self.tr(key))
        for job in reversed(self.jobs):
            jobs.add_row(job["job_id"], job["case_id"], job["state"],
                         f"{job.get('cursor', 0)}/{job.get('total', 0)}",
                         (job.get("last_error") or "")[:40])
        purge_help = self.tr("admin.purge_help")
        self.query_one("#purge-help", Static).update(purge_help)
        cases = self.query_one("#purge-cases", DataTable)
        cases.clear(columns=True)
        for key in ("col.case", "col.time", "col.images", "col.status"):
            cases.add_column(self.tr(key))
        for case in self.cases:
            cases.add_row(case["case_id"], (case.get("created") or "")[:16].replace("T", " "),
                          str(case["instances"]), case["status"], key=case["case_id"])
        lines = [f"[b]{self.tr('admin.audit')}[/b]"]
        for entry in reversed(self.audit):
            details = " ".join(f"{k}={v}" for k, v in (entry.get("details") or {}).items())
            lines.append(escape(f"{entry.get('time', '')}  {entry.get('action', '')}  "
                                f"{details[:100]}"))
        log_file = self.service.locations.logs_dir / "kiosk.log"
        lines += ["", f"[b]{escape(self.tr('admin.logfile', path=str(log_file)))}[/b]"]
        lines += [escape(line) for line in self.log_tail]
        self.query_one("#logs-text", Static).update("\n".join(lines))

    def _settings_text(self) -> str:
        c = self.service.config
        cloud = c.cloud
        return "\n".join([
            self.tr("admin.settings"), "",
            f"kiosk_id           {c.kiosk_id}",
            f"data_dir           {self.service.locations.data_dir}",
            f"cloud.url          {cloud.url or '-'}",
            f"cloud.user         {cloud.user or '-'}",
            f"cloud.password     {'(set)' if cloud.password else '-'}",
            f"cloud.token        {'(set)' if cloud.token else '-'}",
            f"sync.interval      {c.sync.interval_seconds} s",
            f"link.kind          {c.link.kind}",
            f"link.expiry_days   {c.link.expiry_days}",
            f"printer.enabled    {c.printer.enabled}",
            f"ui.idle_seconds    {c.ui.idle_seconds}",
            f"ui.done_seconds    {c.ui.done_seconds}",
            f"retention.days     {c.retention.days or 'off'}",
            f"config file        {Path(self.kiosk.config_file) if self.kiosk.config_file else '-'}",
            *([" ", self.tr("admin.config_pin")] if c.ui.admin_pin else []),
        ])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("retry", "sync_now"):
            return self.section == "sync"
        if action == "purge":
            return self.section == "purge"
        if action == "change_pin":
            return self.section == "settings"
        return True

    def action_section(self, name: str) -> None:
        self.section = name
        self.query_one("#admin-sections", ContentSwitcher).current = name
        focus = {"sync": "#sync-jobs", "purge": "#purge-cases"}.get(name)
        if focus:
            self.query_one(focus).focus()
        else:
            self.query_one(f"#{name}").focus()
        self.refresh_bindings()

    def action_retry(self) -> None:
        try:
            count = self.service.sync_retry_failed()
        except Exception as exc:
            log.exception("retry of failed uploads")
            self.app.push_screen(ErrorDialog(*error_say(exc)))
            return
        self.notify(self.tr("admin.retried", n=count))
        self.load()

    def action_sync_now(self) -> None:
        self.kiosk.wake_sync()
        self.notify(self.tr("admin.sync_started"))

    def action_purge(self) -> None:
        table = self.query_one("#purge-cases", DataTable)
        if not self.cases or table.cursor_row < 0:
            return
        self.check_purge(self.cases[table.cursor_row]["case_id"])

    @work(thread=True, exclusive=True, group="admin-purge", exit_on_error=False)
    def check_purge(self, case_id: str) -> None:
        """Whether the case is uploaded (reads its manifests: off the event loop)."""
        try:
            uploaded = self.service.upload_state(case_id).uploaded
        except Exception as exc:
            log.exception("upload state of %s", case_id)
            self.post_message(WorkFailed("purge", exc))
            return
        self.post_message(WorkDone("purge_check", (case_id, uploaded)))

    def _confirm_purge(self, case_id: str, uploaded: bool) -> None:
        """Confirm; a case not uploaded is an override: the PIN again, then a forced purge."""

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            if uploaded:
                self.run_purge(case_id, False)
            else:
                self.kiosk.require_pin("force_purge", lambda: self.run_purge(case_id, True),
                                       case_id=case_id)

        text = ("admin.purge_text", {}) if uploaded else ("admin.purge_unuploaded",
                                                         {"case": case_id})
        self.app.push_screen(ConfirmDialog(("admin.purge_confirm", {"case": case_id}), text),
                             answered)

    @work(thread=True, exclusive=True, group="admin-purge", exit_on_error=False)
    def run_purge(self, case_id: str, force: bool) -> None:
        """Purge through the facade; the coordinator has confirmed (and typed the PIN)."""
        try:
            self.service.purge_case(case_id, force=force)
        except Exception as exc:
            log.exception("purge of %s", case_id)
            self.post_message(WorkFailed("purge", exc))
            return
        self.post_message(WorkDone("purged", case_id))

    def action_change_pin(self) -> None:
        """A new coordinator PIN, typed twice (Admin is already behind the current one)."""

        def chosen(pin: str | None) -> None:
            if pin is not None:
                self.notify(self.tr("pin.set_done"))

        self.app.push_screen(SetPinDialog(change=True), chosen)

    def action_leave(self) -> None:
        self.dismiss(None)
