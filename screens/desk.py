"""What a screen may ask of the desk app: a protocol, so screens never import the app itself.

:class:`kiosk_tui.app.KioskApp` implements it; screens reach it as ``self.kiosk``. Keeping it
here (below the screens, which the app imports) is what keeps the UI free of import cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kiosk.cloud.sync import SyncStatus
    from kiosk.media.medium import Medium
    from kiosk.service import KioskService


class Desk(Protocol):
    """The desk app as its screens see it."""

    #: The core's facade: the only way into the core.
    service: KioskService
    #: The media inserted now, as the last media event listed them.
    media: list[Medium]
    #: The language shown: ``en`` or ``zh``.
    lang: str
    #: The configuration file the kiosk was started with, if any.
    config_file: str | Path | None
    #: The outbox's last known state (None before the first read).
    sync_status: SyncStatus | None

    @property
    def flow_running(self) -> bool:
        """Whether a patient flow is under way (Home is only passing through)."""
        ...

    def media_unused(self, medium: Medium) -> bool:
        """Whether this inserted medium has not started an import yet."""
        ...

    def claim_medium(self, medium: Medium) -> None:
        """This medium is being imported: Home must not offer it again while it stays in."""
        ...

    def start_import(self, medium: Medium) -> None:
        """A hospital medium was inserted at Home: import it and walk the patient flow."""
        ...

    def open_case(self, case_id: str) -> None:
        """Home: continue with a case from today's list."""
        ...

    def open_admin(self) -> None:
        """Home: the Admin screen, behind the coordinator PIN."""
        ...

    def require_pin(self, purpose: str, granted: Callable[[], object], *,
                    case_id: str | None = None) -> None:
        """Call ``granted`` once the coordinator typed the PIN for ``purpose``."""
        ...

    def wake_sync(self) -> None:
        """Start a sync round now (after an import, on "check translations")."""
        ...

    def return_home(self) -> None:
        """Clear the patient's screens: Home, with nothing of them left."""
        ...
