"""Dialogs: errors that say what to do next, yes/no questions, the coordinator PIN, file lists.

Each returns a typed value through ``dismiss`` (``ModalScreen[bool]`` etc.).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from kiosk.errors import DiscTreeLimitError, KioskError, PinError
from kiosk.security.pin import MAX_DIGITS
from kiosk_tui.base import LANGUAGE_BINDING, KioskModal
from kiosk_tui.widgets import FormInput, KeyBar

#: Text for a dialog: a plain string (from the core, already final) or (i18n key, values).
#: What a dialog says: the core's text as it is, an i18n key with values, or the core's own
#: words in both languages (``{"en": ..., "zh": ...}``, e.g. the import report's ``no_dicom``).
Say = str | tuple[str, dict[str, Any]] | dict[str, str]


def error_say(exc: BaseException) -> tuple[Say, Say]:
    """Title and text of an error: the core's own words, or a generic "what next"."""
    if isinstance(exc, DiscTreeLimitError):  # what a coordinator meets at the desk: in Chinese too
        return (("error.disc_tree_title", {}),
                (f"error.disc_tree.{exc.limit}", dict(exc.values)))
    if isinstance(exc, KioskError):
        return exc.title, exc.text
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ("error.unexpected_title", {}), ("error.unexpected_text", {"detail": detail})


def say(dialog: KioskModal[Any], value: Say) -> str:
    """A :data:`Say` in the dialog's current language."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value["zh"] if dialog.kiosk.lang == "zh" else value["en"]
    return dialog.tr(value[0], **value[1])


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


def _pin_field(field_id: str) -> FormInput:
    """A masked field that takes digits only, as many as a PIN may have."""
    return FormInput(password=True, id=field_id, max_length=MAX_DIGITS, restrict=r"[0-9]*",
                     compact=True)


class PinDialog(KioskModal[bool]):
    """The coordinator PIN for ``purpose`` (Admin or an override): True when it was right.

    The facade checks it (scrypt, constant time), keeps the lockout across restarts and audits
    every attempt; this dialog only shows what it answers.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "k.cancel", key_display="Esc"), LANGUAGE_BINDING]

    def __init__(self, purpose: str = "admin", *, case_id: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(classes="dialog")
        self.purpose = purpose
        self.case_id = case_id
        self.hint = hint
        self.message: tuple[str, dict[str, Any]] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield Static(id="pin-purpose")
            yield Static(id="pin-prompt")
            yield _pin_field("pin")
            yield Static(id="pin-message", classes="dialog-warning")
            yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        try:
            locked = self.kiosk.service.pin_status().locked_seconds
        except KioskError:
            locked = 0  # a damaged PIN file: the check says so
        if locked:
            self.message = ("pin.locked", {"s": locked})
            self.redraw()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("pin.title"))
        self.query_one("#pin-purpose", Static).update(
            self.tr(f"pin.purpose.{self.purpose}", case=self.case_id or ""))
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
        """Have the facade check the typed PIN; say how many tries are left or how long to wait."""
        field = self.query_one("#pin", Input)
        try:
            result = self.kiosk.service.check_pin(field.value, self.purpose,
                                                  case_id=self.case_id)
        except KioskError as exc:  # no PIN (removed meanwhile) or a damaged PIN file
            self.dismiss(False)
            self.app.push_screen(ErrorDialog(*error_say(exc)))
            return
        if result.ok:
            self.dismiss(True)
            return
        if result.locked_seconds:
            self.message = ("pin.locked", {"s": result.locked_seconds})
        else:
            self.message = ("pin.wrong", {"left": result.tries_left})
        field.value = ""
        self.redraw()

    def action_cancel(self) -> None:
        self.dismiss(False)


class SetPinDialog(KioskModal[str | None]):
    """Choose the coordinator PIN, typed twice; returns it once stored (None: put off).

    On first start (no PIN yet) the desk asks for one; Admin and the overrides ask again until
    one is set. ``change`` is Admin's "change PIN".
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "k.later", key_display="Esc"), LANGUAGE_BINDING]

    def __init__(self, *, change: bool = False) -> None:
        super().__init__(classes="dialog")
        self.change = change
        self.message: tuple[str, dict[str, Any]] | str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield Static(id="pin-help")
            yield Static(id="pin-new-label")
            yield _pin_field("pin-new")
            yield Static(id="pin-again-label")
            yield _pin_field("pin-again")
            yield Static(id="pin-message", classes="dialog-warning", markup=False)
            yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#pin-new", Input).focus()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(
            self.tr("pin.change_title" if self.change else "pin.set_title"))
        self.query_one("#pin-help", Static).update(
            self.tr("pin.change_help" if self.change else "pin.set_help"))
        self.query_one("#pin-new-label", Static).update(self.tr("pin.new"))
        self.query_one("#pin-again-label", Static).update(self.tr("pin.again"))
        message = self.message
        text = say(self, message) if message is not None else ""
        self.query_one("#pin-message", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "pin-new":
            self.query_one("#pin-again", Input).focus()
        else:
            self.submit()

    def submit(self) -> None:
        """Both entries equal and acceptable: store it through the facade and return it."""
        first = self.query_one("#pin-new", Input)
        again = self.query_one("#pin-again", Input)
        pin = first.value
        if pin != again.value:
            self.message = ("pin.mismatch", {})
        else:
            try:
                self.kiosk.service.set_pin(pin, source="admin" if self.change else "ui")
            except PinError as exc:
                self.message = (f"pin.rule.{exc.reason}", {}) if exc.reason in (
                    "digits", "same", "sequence") else exc.text
            except KioskError as exc:
                self.message = exc.text
            else:
                self.dismiss(pin)
                return
        first.value = again.value = ""
        first.focus()
        self.redraw()

    def action_cancel(self) -> None:
        self.dismiss(None)


def locked_archives(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The archives of an import report with encrypted files the import could not open."""
    return [a for a in report.get("archives") or [] if a.get("locked")]


def locked_names(archives: list[dict[str, Any]]) -> str:
    """The archives' names, as a coordinator reads them (the first three)."""
    names = [a["path"].rpartition("/")[2] for a in archives]
    return ", ".join(names[:3]) + (" …" if len(names) > 3 else "")


class ArchivePasswordDialog(KioskModal[str | None]):
    """The password of encrypted zip archives on the medium; returns it (None: go on without).

    Keyboard only: type, Enter. ``wrong`` says the last password did not open them. The caller
    imports the medium again with it (nothing already imported is copied twice).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "k.cancel", key_display="Esc"), LANGUAGE_BINDING]

    def __init__(self, archives: list[dict[str, Any]], *, wrong: bool = False) -> None:
        super().__init__(classes="dialog")
        self.archives = archives
        self.message: str | None = "archive_pw.wrong" if wrong else None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(id="dialog-title", classes="dialog-title")
            yield Static(id="archive-pw-text", markup=False)
            # Masked: the patient may be looking at the screen; a wrong one is simply asked again.
            yield FormInput(password=True, id="archive-pw", compact=True)
            yield Static(id="archive-pw-message", classes="dialog-warning")
            yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#archive-pw", Input).focus()

    def redraw(self) -> None:
        self.query_one("#dialog-title", Static).update(self.tr("archive_pw.title"))
        self.query_one("#archive-pw-text", Static).update(self.tr(
            "archive_pw.text", n=sum(a["locked"] for a in self.archives),
            names=locked_names(self.archives)))
        self.query_one("#archive-pw-message", Static).update(
            self.tr(self.message) if self.message else "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value:
            self.dismiss(event.value)
            return
        self.message = "archive_pw.empty"
        self.redraw()

    def action_cancel(self) -> None:
        self.dismiss(None)


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
