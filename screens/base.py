"""What every desk screen shares: the frame, the language, media events, the busy flag."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from kiosk_tui.i18n import t
from kiosk_tui.widgets import KeyBar, TopBar

if TYPE_CHECKING:
    from kiosk.media.medium import MediaEvent
    from kiosk.service import KioskService
    from kiosk_tui.desk import Desk

ResultT = TypeVar("ResultT")

#: F2 works in dialogs too: app bindings do not reach past a modal screen.
LANGUAGE_BINDING = Binding("f2", "app.toggle_language", "k.lang", key_display="F2")


class KioskScreen(Screen[ResultT]):
    """A full screen of the desk flow.

    Subclasses compose their body in :meth:`compose_body` and fill every text in
    :meth:`redraw`, which runs again whenever the language changes.
    """

    #: The i18n key of the title in the top bar.
    TITLE_KEY: ClassVar[str] = "app.title"
    #: True while work that must not be interrupted runs; the idle timer leaves it alone.
    busy: bool = False
    #: Simulated media the demo may insert on this screen ("disc", "disc2", "stick").
    demo_offers: frozenset[str] = frozenset()

    @property
    def kiosk(self) -> Desk:
        """The app, typed."""
        return cast("Desk", self.app)

    @property
    def service(self) -> KioskService:
        """The core's facade: the only way into the core."""
        return self.kiosk.service

    def tr(self, key: str, **values: object) -> str:
        """``key`` in the current language."""
        return t(key, self.kiosk.lang, **values)

    def compose(self) -> ComposeResult:
        yield TopBar(self.TITLE_KEY, **self.title_values())
        yield from self.compose_body()
        yield KeyBar()

    def title_values(self) -> dict[str, object]:
        """Values for the title's fields (the case number on the Case screen)."""
        return {}

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the top bar and the key bar."""
        yield from ()

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._language_changed, init=False)
        self.redraw()

    def _language_changed(self, _lang: str) -> None:
        self.redraw()
        self.refresh_bindings()

    def redraw(self) -> None:
        """Fill every text from the screen's state in the current language."""

    def media_event(self, event: MediaEvent) -> None:
        """A disc or stick was inserted, removed or changed role while this screen is on top."""


class KioskModal(ModalScreen[ResultT]):
    """A dialog over a screen; like :class:`KioskScreen`, it re-renders on F2."""

    BINDINGS: ClassVar[list[BindingType]] = [LANGUAGE_BINDING]

    @property
    def kiosk(self) -> Desk:
        """The app, typed."""
        return cast("Desk", self.app)

    def tr(self, key: str, **values: object) -> str:
        """``key`` in the current language."""
        return t(key, self.kiosk.lang, **values)

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._language_changed, init=False)
        self.redraw()

    def _language_changed(self, _lang: str) -> None:
        self.redraw()
        self.refresh_bindings()

    def redraw(self) -> None:
        """Fill every text in the current language."""
