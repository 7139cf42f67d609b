"""Review: what the medium held — patients, studies and series, verification, warnings.

Returns True to go on to the case, False to go Home, or the password the coordinator typed for
encrypted zip archives on the medium (the app then imports the medium again with it). The
source's path is never shown (it is a mount point or a temporary folder); its label is.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from kiosk.sources.scan_limits import format_bytes
from kiosk_tui import fmt
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ArchivePasswordDialog, FileListDialog, locked_archives, locked_names
from kiosk_tui.messages import WorkDone


class ReviewScreen(KioskScreen[bool | str]):
    """The import report of one medium, for the coordinator to check."""

    TITLE_KEY = "review.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "answer(True)", "k.continue", key_display="Enter"),
        Binding("f", "files", "k.files", key_display="F"),
        Binding("p", "password", "k.password", key_display="P"),
        Binding("escape", "answer(False)", "k.home", key_display="Esc"),
    ]

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(id="review")
        self.report = report
        #: Series of the studies this medium touched (from the case), by study UID.
        self.series: dict[str, list[dict[str, Any]]] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="review-body"):
            yield Static(id="review-verdict", classes="verdict")
            yield Static(id="review-counts")
            yield Static(id="review-patients-title", classes="section")
            yield Static(id="review-patients")
            yield Static(id="review-studies-title", classes="section")
            table: DataTable[str] = DataTable(id="review-studies", zebra_stripes=True,
                                              cursor_type="none")
            table.can_focus = False  # read-only; the page scrolls instead
            yield table
            yield Static(id="review-dicomdir")
            yield Static(id="review-skipped")
            yield Static(id="review-archives", classes="warnings")
            yield Static(id="review-warnings", classes="warnings")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#review-body").focus()
        if self.report.get("case_id"):
            self.load_series()

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def load_series(self) -> None:
        """The series table comes from the case (the report only counts series)."""
        detail = self.service.case_detail(self.report["case_id"])
        mine = {s["study_uid"] for s in self.report["studies"]}
        self.post_message(WorkDone("series", {
            s["study_uid"]: s.get("series", []) for s in detail["studies"]
            if s["study_uid"] in mine}))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "series":
            self.series = message.result
            self.redraw()

    def redraw(self) -> None:
        r = self.report
        inst = r["instances"]
        problems = r["verification"]["problems"]
        limits = r.get("limits") or {}
        if limits.get("stopped") == "max_files":
            text = self.tr("review.stopped_files", n=f"{limits['max_files']:,}")
            verdict = f"[yellow]{escape(text)}[/]"
        elif limits.get("stopped") == "max_seconds":
            text = self.tr("review.stopped_time",
                           time=fmt.duration(int(limits["max_seconds"]), self.kiosk.lang))
            verdict = f"[yellow]{escape(text)}[/]"
        elif r.get("error"):
            verdict = f"[yellow]{escape(self.tr('review.incomplete', error=r['error']))}[/]"
        elif problems:
            verdict = f"[red]{self.tr('review.verified_bad', n=len(problems))}[/]"
        else:
            verdict = f"[green]{self.tr('review.verified_ok', n=inst['verified'])}[/]"
        self.query_one("#review-verdict", Static).update(verdict)
        self.query_one("#review-counts", Static).update(self.tr(
            "review.counts", found=inst["found"], new=inst["imported"],
            dup=inst["duplicates"], size=fmt.megabytes(r["bytes"])))
        self.query_one("#review-patients-title", Static).update(self.tr("review.patients"))
        lines = [escape(self.tr("review.patient_line", name=p["name_display"],
                                pid=p["patient_id"], dob=fmt.dicom_date(p.get("birth_date")),
                                sex=self.tr(f"sex.{p['sex']}") if p.get("sex") in ("F", "M", "O")
                                else ""))
                 for p in r["patients"]]
        if len({p["patient_id"] for p in r["patients"]}) > 1:
            lines.append(f"[yellow]{self.tr('review.several', n=len(r['patients']))}[/]")
        self.query_one("#review-patients", Static).update("\n".join(lines))
        self.query_one("#review-studies-title", Static).update(self.tr("review.studies"))
        self._fill_studies()
        dd = r["dicomdir"]
        self.query_one("#review-dicomdir", Static).update(
            self.tr("review.dicomdir", records=dd["records"], missing=len(dd["missing"]),
                    unlisted=len(dd["unlisted"])) if dd["present"]
            else self.tr("review.no_dicomdir"))
        self.query_one("#review-skipped", Static).update(self.tr(
            "review.skipped", rejected=len(r["rejected"]), ignored=len(r["ignored"])))
        self._draw_archives()
        notes = [f"• {escape(p['path'])}: {escape(p['problem'])}" for p in problems[:20]]
        if limits.get("too_deep"):
            notes.append("• " + escape(self.tr("review.too_deep", count=limits["too_deep"],
                                               n=limits["max_depth"])))
        if limits.get("too_large"):
            notes.append("• " + escape(self.tr("review.too_large", count=limits["too_large"],
                                               size=format_bytes(limits["max_file_bytes"]))))
        notes += [f"• {escape(w)}" for w in r["warnings"][:20]]
        warnings = self.query_one("#review-warnings", Static)
        warnings.update(f"[b]{self.tr('review.warnings')}[/b]\n" + "\n".join(notes)
                        if notes else "")
        warnings.display = bool(notes)

    def _fill_studies(self) -> None:
        table = self.query_one("#review-studies", DataTable)
        table.clear(columns=True)
        for key in ("col.date", "col.mod", "col.desc", "col.series", "col.images"):
            table.add_column(self.tr(key))
        for study in self.report["studies"]:
            date = fmt.dicom_date(study.get("study_date"))
            series = self.series.get(study["study_uid"])
            table.add_row(date, "/".join(study["modalities"]),
                          (study.get("description") or "")[:40], str(study["series"]),
                          str(study["instances"]))
            for s in series or []:
                number = "" if s.get("number") is None else f"#{s['number']} "
                table.add_row("", f"  {s.get('modality') or ''}",
                              f"  {number}{s.get('description') or ''}"[:40], "",
                              str(s["instances"]))

    def _draw_archives(self) -> None:
        """Archives on the medium: what came out of them, and what a password would add."""
        archives = self.report.get("archives") or []
        lines = []
        if archives:
            lines.append(escape(self.tr("review.archives", n=len(archives),
                                        imported=sum(a["imported"] for a in archives))))
        for a in archives:
            if a.get("code") in ("damaged", "limit", "unsupported"):
                lines.append("• " + escape(self.tr(
                    "review.archive_problem", path=a["path"],
                    code=self.tr(f"archive.code.{a['code']}"))))
        locked = locked_archives(self.report)
        if locked:
            wrong = any(a.get("code") == "password_wrong" for a in locked)
            lines.append("[yellow]" + escape(self.tr(
                "review.locked_wrong" if wrong else "review.locked",
                n=sum(a["locked"] for a in locked), names=locked_names(locked))) + "[/]")
        widget = self.query_one("#review-archives", Static)
        widget.update("\n".join(lines))
        widget.display = bool(lines)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "password":  # offered only when encrypted files were left out
            return bool(locked_archives(self.report))
        return True

    def action_password(self) -> None:
        locked = locked_archives(self.report)
        if not locked:
            return
        wrong = any(a.get("code") == "password_wrong" for a in locked)

        def typed(password: str | None) -> None:
            if password:
                self.dismiss(password)

        self.app.push_screen(ArchivePasswordDialog(locked, wrong=wrong), typed)

    def action_files(self) -> None:
        self.app.push_screen(FileListDialog(self.report["rejected"], self.report["ignored"]))

    def action_answer(self, go_on: bool) -> None:
        self.dismiss(go_on)
