"""Messages that thread workers post to the UI (they never touch widgets themselves).

Progress messages replace each other in the queue (``can_replace``): when the UI is busy, only
the newest import or export progress is drawn, never a backlog of stale ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # types only: kiosk.package.export loads the AES machinery, needed only on export
    from kiosk.cloud.sync import SyncStatus
    from kiosk.ingest.importer import ImportProgress
    from kiosk.media.medium import MediaEvent, Medium
    from kiosk.package.export import ExportProgress


class MediaChanged(Message):
    """Discs or sticks were inserted, removed or changed role."""

    def __init__(self, events: list[MediaEvent], present: list[Medium]) -> None:
        super().__init__()
        self.events = events
        self.present = present


class SyncStatusChanged(Message):
    """The cloud connection or the outbox changed (after every sync round)."""

    def __init__(self, status: SyncStatus) -> None:
        super().__init__()
        self.status = status

    def can_replace(self, message: Message) -> bool:
        """Only the latest status matters."""
        return isinstance(message, SyncStatusChanged)


class ImportProgressed(Message):
    """The import moved on."""

    def __init__(self, progress: ImportProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        """A newer progress makes an unhandled older one pointless."""
        return isinstance(message, ImportProgressed)


class ExportProgressed(Message):
    """The export moved on."""

    def __init__(self, progress: ExportProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        """A newer progress makes an unhandled older one pointless."""
        return isinstance(message, ExportProgressed)


class WorkDone(Message):
    """A worker finished: ``result`` is what it returned (a report, a list, ...)."""

    def __init__(self, job: str, result: Any) -> None:
        super().__init__()
        self.job = job
        self.result = result


class WorkFailed(Message):
    """A worker failed with ``error`` (shown by the screen with :func:`dialogs.error_say`)."""

    def __init__(self, job: str, error: BaseException) -> None:
        super().__init__()
        self.job = job
        self.error = error
