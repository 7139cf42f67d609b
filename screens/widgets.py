"""The frame every screen shares: a top bar (title, cloud status) and a key bar.

The key bar is the desk's Footer: every action a screen offers is listed with its key, in the
current language (a binding's ``description`` is an :mod:`kiosk_tui.i18n` key). Textual's own
Footer shows descriptions verbatim, so it could not switch language with F2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static

from kiosk_tui.i18n import STRINGS, t

if TYPE_CHECKING:
    from kiosk.cloud.sync import SyncStatus


def sync_text(status: SyncStatus | None, lang: str) -> Text:
    """``● Cloud online · 2 to upload`` with a colour per state."""
    if status is None:
        return Text(t("sync.unknown", lang), style="dim")
    colour = {"online": "green", "offline": "yellow", "error": "red"}.get(status.state, "dim")
    text = Text("● ", style=colour)
    text.append(t(f"sync.{status.state}", lang) if f"sync.{status.state}" in STRINGS
                else status.state)
    waiting = sum(n for state, n in status.jobs.items() if state not in ("done", "failed"))
    if waiting:
        text.append(" · " + t("sync.outbox", lang, n=waiting))
    if status.jobs.get("failed"):
        text.append(" · ")
        text.append(t("sync.failed", lang, n=status.jobs["failed"]), style="red")
    return text


class TopBar(Horizontal):
    """One line: kiosk name and screen title on the left, cloud status on the right."""

    def __init__(self, title_key: str, **title_values: object) -> None:
        super().__init__(id="topbar")
        self.title_key = title_key
        self.title_values = title_values
        # Kept here, not queried: a watcher may fire while the screen is being taken down.
        self._title = Static(id="topbar-title")
        self._cloud = Static(id="topbar-cloud")

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._cloud

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._redraw, init=False)
        self.watch(self.app, "sync_status", self._redraw, init=False)
        self._redraw()

    def set_title(self, key: str, **values: object) -> None:
        """Show another title (a screen whose title names the case)."""
        self.title_key, self.title_values = key, values
        self._redraw()

    def _redraw(self, _value: object = None) -> None:
        lang: str = self.app.lang  # type: ignore[attr-defined]
        title = Text(t("app.title", lang), style="bold")
        title.append("  ·  " + t(self.title_key, lang, **self.title_values))
        self._title.update(title)
        status = self.app.sync_status  # type: ignore[attr-defined]
        self._cloud.update(sync_text(status, lang))


class KeyBar(Static):
    """Every key the current screen offers, with its translated label; disabled ones dimmed.

    The screen's own keys come first, the language and quit keys last. Lines break between
    two keys, never between a key and its label.
    """

    #: Keys every screen has; listed after the screen's own.
    LAST = ("k.lang", "k.quit")

    def __init__(self) -> None:
        super().__init__(id="keybar")

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.watch(self.app, "lang", self._redraw, init=False)
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _bindings_changed(self, _screen: Screen[object]) -> None:
        self._redraw()

    def _redraw(self, _value: object = None) -> None:
        self.update(self.key_text(self.size.width or 80))

    def keys(self) -> list[tuple[str, str, bool]]:
        """(key, label, enabled) for every key shown, in display order."""
        lang: str = self.app.lang  # type: ignore[attr-defined]
        found: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or binding.description not in STRINGS:
                continue  # Textual's own bindings (tables, inputs) stay unlisted
            if binding.action in seen:
                continue
            seen.add(binding.action)
            found.append((self.app.get_key_display(binding), binding.description,
                          active.enabled))
        found.sort(key=lambda k: k[1] in self.LAST)  # stable: the screen's order stays
        return [(key, t(desc, lang), enabled) for key, desc, enabled in found]

    def key_text(self, width: int) -> Text:
        """The key bar as text no wider than ``width``: ``Enter Continue  Esc Home  F2 中文``."""
        text = Text(no_wrap=True)
        used = 0
        for key, label, enabled in self.keys():
            pair = Text()
            pair.append(f" {key} ", style="reverse" if enabled else "dim reverse")
            pair.append(" " + label, style="" if enabled else "dim")
            if used and used + 2 + pair.cell_len > width:
                text.append("\n")
                used = 0
            elif used:
                text.append("  ")
                used += 2
            text.append_text(pair)
            used += pair.cell_len
        return text


# Enter belongs to the focused widget: a dialog's own (priority) Enter binding would run before
# the keys typed just ahead of it reached the field. These widgets keep Enter and show it.


class FormInput(Input):
    """A form field whose Enter submits the form and is listed in the key bar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "k.submit", key_display="Enter")]


class PickList(OptionList):
    """A list whose Enter picks the highlighted entry and is listed in the key bar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "k.select", key_display="Enter")]
