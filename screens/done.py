"""Done: the QR of the cloud link, the link, the USB passphrase (shown once), print the slip.

The screen clears itself after ``ui.done_seconds`` so the next patient never sees this one;
the passphrase lives only in this screen's memory and on the printed slip. When the window is
wide enough (130×45 for the sample disc's two-study link) the QR sits beside the text; narrower
windows stack them, and a window too small for the code says so (a cropped QR does not scan):
the link and the slip still carry it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.widgets import Static

from kiosk.links.slip import passcode_text
from kiosk.links.tokens import Link
from kiosk.security.logfile import error_kind
from kiosk_tui.base import KioskScreen
from kiosk_tui.dialogs import ErrorDialog, error_say
from kiosk_tui.messages import WorkDone, WorkFailed
from kiosk_tui.qr_widget import QrCode

log = logging.getLogger(__name__)

#: Columns the text beside the QR needs; narrower windows put it below the QR.
INFO_WIDTH = 48


class DoneScreen(KioskScreen[None]):
    """The patient's take-away: QR, link, passphrase and how to open the stick."""

    TITLE_KEY = "done.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "print", "k.print", key_display="P"),
        Binding("enter", "finish", "k.finish", key_display="Enter"),
    ]

    def __init__(self, case_id: str, export: dict[str, Any] | None, *,
                 seconds: int = 120) -> None:
        super().__init__(id="done")
        self.case_id = case_id
        # Kept only here: the core stores no passphrase, and this screen is gone in minutes.
        self.passphrase: str | None = (export or {}).get("passphrase")
        self.encrypted = bool((export or {}).get("encrypted"))
        self.link: Link | None = None
        self.left = seconds
        self.print_state = ""  # "", "printing", "printed"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="done-scroll"), Container(id="done-body"):
            yield Container(id="done-qr-area")
            with Container(id="done-info"):
                yield Static(id="done-qr-small")
                yield Static(id="done-scan", classes="section")
                yield Static(id="done-link", markup=False)
                yield Static(id="done-valid")
                yield Static(id="done-pass-title", classes="section")
                yield Static(id="done-pass", markup=False)
                yield Static(id="done-once", classes="hint")
                yield Static(id="done-howto")
                yield Static(id="done-print")
                yield Static(id="done-countdown", classes="hint")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self._tick)
        self.mint_link()

    @work(thread=True, exclusive=True, group="done-link", exit_on_error=False)
    def mint_link(self) -> None:
        """Mint (or reuse) the case's link: a signature and a database write, off the loop."""
        try:
            link = self.service.case_link(self.case_id)
        except Exception as exc:
            log.exception("no link for %s", self.case_id)
            self.post_message(WorkFailed("link", exc))
            return
        self.post_message(WorkDone("link", link))

    @work(thread=True, exclusive=True, group="done-print", exit_on_error=False)
    def print_slip(self) -> None:
        """Print the slip (QR, expiry, case number, passphrase, instructions)."""
        try:
            self.service.print_slip(self.case_id, passphrase=self.passphrase)
        except Exception as exc:
            log.warning("slip for %s not printed: %s", self.case_id, error_kind(exc),
                        exc_info=True)
            self.post_message(WorkFailed("print", exc))
            return
        self.post_message(WorkDone("printed", None))

    def on_work_done(self, message: WorkDone) -> None:
        if message.job == "link":
            self.link = message.result
            area = self.query_one("#done-qr-area", Container)
            area.remove_children()
            area.mount(QrCode(self.link.url, id="done-qr"))
            self.call_after_refresh(self._layout)
        elif message.job == "printed":
            self.print_state = "printed"
        self.redraw()

    def on_work_failed(self, message: WorkFailed) -> None:
        self.print_state = ""
        self.redraw()
        self.app.push_screen(ErrorDialog(*error_say(message.error)))

    def on_resize(self, _event: events.Resize) -> None:
        self._layout()

    def _layout(self) -> None:
        """Beside or below; the QR only when all of it fits."""
        width, height = self.app.size
        qr = self.query(QrCode)
        if not qr:
            return
        need_w, need_h = qr.first().needed
        self.query_one("#done-body").set_class(width >= need_w + INFO_WIDTH, "-wide")
        # Two lines for the top and key bars; the QR never scrolls partly out of view.
        fits = width >= need_w and height - 2 >= need_h
        qr.first().display = fits
        self.query_one("#done-qr-area").display = fits
        small = self.query_one("#done-qr-small", Static)
        small.display = not fits
        small.update(self.tr("done.qr_small", w=need_w, h=need_h + 2))

    def redraw(self) -> None:
        if not self.query(QrCode):
            self.query_one("#done-qr-small", Static).display = False
        self.query_one("#done-scan", Static).update(self.tr("done.scan"))
        link = self.link
        self.query_one("#done-link", Static).update(link.url if link else "…")
        valid = self.tr("done.valid", date=link.expiry_date) if link else ""
        if link is not None and link.passcode:  # on the slip too; never in the QR
            valid += "\n" + self.tr("done.passcode", code=passcode_text(link.passcode))
        self.query_one("#done-valid", Static).update(valid)
        if self.encrypted and self.passphrase:
            self.query_one("#done-pass-title", Static).update(self.tr("done.passphrase"))
            self.query_one("#done-pass", Static).update(f" {self.passphrase} ")
            self.query_one("#done-once", Static).update(self.tr("done.once"))
            self.query_one("#done-howto", Static).update(self.tr("done.howto"))
        else:
            self.query_one("#done-pass-title", Static).update(self.tr("done.plain"))
            self.query_one("#done-pass", Static).display = False
            self.query_one("#done-once", Static).update("")
            self.query_one("#done-howto", Static).update("")
        self.query_one("#done-print", Static).update(
            self.tr("done.printing") if self.print_state == "printing"
            else self.tr("done.printed") if self.print_state == "printed" else "")
        self.query_one("#done-countdown", Static).update(self.tr("done.countdown", s=self.left))
        if self.query(QrCode):
            self._layout()

    def _tick(self) -> None:
        self.left -= 1
        if self.left <= 0:
            # Everything goes, dialogs on top included (a printer error must not keep the
            # passphrase on screen for the next patient).
            self.kiosk.return_home()
            return
        self.query_one("#done-countdown", Static).update(self.tr("done.countdown", s=self.left))

    def action_print(self) -> None:
        if self.print_state == "printing":
            return
        self.print_state = "printing"
        self.redraw()
        self.print_slip()

    def action_finish(self) -> None:
        self.dismiss(None)
