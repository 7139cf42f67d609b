"""Dialogs: errors that say what to do next, yes/no questions, the Admin PIN, file lists.

Each returns a typed value through ``dismiss`` (``ModalScreen[bool]`` etc.).
"""

from __future__ import annotations

import hmac
import time
from typing import Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from kiosk.errors import KioskError
from kiosk_tui.base import LANGUAGE_BINDING, KioskModal
from kiosk_tui.widgets import FormInput, KeyBar

#: Text for a dialog: a plain string (from the core, already final) or (i18n key, values).
Say = str | tuple[str, dict[str, Any]]


def error_say(exc: BaseException) -> tuple[Say, Say]:
    """Title and text of an error: the core's own words, or a generic "what next"."""
    if isinstance(exc, KioskError):
        return exc.title, exc.text
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ("error.unexpected_title", {}), ("error.unexpected_text", {"detail": detail})


def say(dialog: KioskModal[Any], value: Say) -> str:
    """A :data:`Say` in the dialog's current language."""
    return value if isinstance(value, str) else dialog.tr(value[0], **value[1])


class ErrorDialog(KioskModal[None]):
    """What happened and what to do next; Enter or Esc closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,escape", "close", "k.ok", key_display="Enter"), LANGUAGE_BINDING]

    def __init__(self, title: Say, text: Say) -> None:
        super().__init__(classes="dialog error-dialog")
        self.title_say, self.text_say = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title", markup=False)
            yield Static(id="dialog-text", classes="dialog-text", markup=False)
            yield KeyBar()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update("⚠ " + say(self, self.title_say))
        self.query_one("#dialog-text", Static).update(say(self, self.text_say))

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmDialog(KioskModal[bool]):
    """A yes/no question; Y or Enter is yes, N or Esc is no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "k.yes", key_display="Y"),
        Binding("n,escape", "answer(False)", "k.no", key_display="N"),
        LANGUAGE_BINDING]

    def __init__(self, title: Say, text: Say) -> None:
        super().__init__(classes="dialog")
        self.title_say, self.text_say = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title", markup=False)
            yield Static(id="dialog-text", classes="dialog-text", markup=False)
            yield KeyBar()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(say(self, self.title_say))
        self.query_one("#dialog-text", Static).update(say(self, self.text_say))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PinDialog(KioskModal[bool]):
    """The Admin PIN: True when it was right. Three wrong PINs lock it for a while."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "k.cancel", key_display="Esc"), LANGUAGE_BINDING]
    MAX_TRIES = 3
    LOCK_SECONDS = 30

    def __init__(self, pin: str, *, hint: str | None = None) -> None:
        super().__init__(classes="dialog")
        self._pin = pin
        self.hint = hint
        self.message: tuple[str, dict[str, Any]] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield Static(id="pin-prompt")
            yield FormInput(password=True, id="pin", max_length=12, restrict=r"[0-9]*",
                            compact=True)
            yield Static(id="pin-message", classes="dialog-warning")
            yield KeyBar()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("pin.title"))
        prompt = self.tr("pin.prompt")
        if self.hint:
            prompt += "   " + self.tr("pin.demo", pin=self.hint)
        self.query_one("#pin-prompt", Static).update(prompt)
        message = self.tr(self.message[0], **self.message[1]) if self.message else ""
        self.query_one("#pin-message", Static).update(message)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.check_pin()

    def check_pin(self) -> None:
        """Compare the typed PIN (constant time); a third miss locks the dialog for a while."""
        field = self.query_one("#pin", Input)
        state = self.kiosk.pin_state
        now = time.monotonic()
        if now < state.locked_until:
            self.message = ("pin.locked", {"s": int(state.locked_until - now) + 1})
        elif hmac.compare_digest(field.value.encode(), self._pin.encode()):
            state.failures = 0
            self.kiosk.service.record_admin_login(True)
            self.dismiss(True)
            return
        else:
            state.failures += 1
            self.kiosk.service.record_admin_login(False)
            left = self.MAX_TRIES - state.failures
            if left <= 0:
                state.failures = 0
                state.locked_until = now + self.LOCK_SECONDS
                self.message = ("pin.locked", {"s": self.LOCK_SECONDS})
            else:
                self.message = ("pin.wrong", {"left": left})
        field.value = ""
        self.redraw()

    def action_cancel(self) -> None:
        self.dismiss(False)


class FileListDialog(KioskModal[None]):
    """The files an import did not take: rejected (unreadable DICOM) and ignored (not DICOM)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,f", "close", "k.back", key_display="Esc"), LANGUAGE_BINDING]

    def __init__(self, rejected: list[dict[str, str]], ignored: list[dict[str, str]]) -> None:
        super().__init__(classes="dialog wide-dialog")
        self.rejected, self.ignored = rejected, ignored

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            with VerticalScroll(id="file-list"):
                yield Static(id="files")
            yield KeyBar()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("files.title"))
        lines = [f"[b]{self.tr('files.rejected')}[/b] ({len(self.rejected)})"]
        lines += [f"  {escape(r['path'])} — {escape(r['reason'])}" for r in self.rejected[:500]]
        if not self.rejected:
            lines.append("  " + self.tr("files.none"))
        lines += ["", f"[b]{self.tr('files.ignored')}[/b] ({len(self.ignored)})"]
        lines += [f"  {escape(r['path'])} — {escape(r['reason'])}" for r in self.ignored[:500]]
        if not self.ignored:
            lines.append("  " + self.tr("files.none"))
        self.query_one("#files", Static).update("\n".join(lines))

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#file-list").focus()

    def action_close(self) -> None:
        self.dismiss(None)
