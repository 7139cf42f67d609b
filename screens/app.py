"""The desk app: screens, the patient flow, media and sync in the background.

:func:`make_app` is the factory ``kiosk``, ``kiosk demo`` and the tests share. The app owns
three background activities, none of which touches a widget: a thread worker polling the media
desk (:class:`MediaChanged` messages), the core's sync loop (:class:`SyncStatusChanged`), and the
patient flow — an async worker that walks Import → Review → Case → Export → Done by awaiting
each screen's typed result. A thread worker also runs retention (purging cases delivered and
uploaded ``retention.days`` ago) at start and every hour.

Admin and the overrides of safety checks go through :meth:`KioskApp.require_pin`; on the first
start without a coordinator PIN the desk asks for one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from kiosk.cloud.sync import SyncStatus
from kiosk.cloud.sync_loop import SyncLoop
from kiosk.errors import KioskError
from kiosk.media.medium import MediaAction, Medium
from kiosk.security.logfile import error_kind, open_log
from kiosk.service import KioskService
from kiosk.system.sd_notify import alive
from kiosk_tui.admin import AdminScreen
from kiosk_tui.base import KioskScreen
from kiosk_tui.case import CaseAction, CaseScreen
from kiosk_tui.dialogs import (
    ArchivePasswordDialog,
    ErrorDialog,
    PinDialog,
    Say,
    SetPinDialog,
    error_say,
    locked_archives,
)
from kiosk_tui.done import DoneScreen
from kiosk_tui.export import ExportScreen
from kiosk_tui.home import HomeScreen
from kiosk_tui.i18n import other, t
from kiosk_tui.import_progress import ImportScreen
from kiosk_tui.messages import MediaChanged, SyncStatusChanged
from kiosk_tui.reports import ReportsScreen
from kiosk_tui.review import ReviewScreen

log = logging.getLogger(__name__)

#: Seconds the media thread waits for events before it looks at its cancel flag again.
MEDIA_POLL_SECONDS = 0.2
#: Seconds between two retention runs (also one at start): purging is a matter of days.
RETENTION_SECONDS = 3600.0
#: The interpreter's thread switch interval while the desk runs (see KioskApp.on_mount).
SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class DemoMedia:
    """What ``kiosk demo`` can put on the desk at a key press: ``"disc"``, ``"disc2"``,
    ``"stick"`` mapped to a function that inserts that simulated medium."""

    insert: dict[str, Callable[[], object]]


class KioskApp(App[None]):
    """MedPass Kiosk's desk UI."""

    CSS_PATH = "kiosk.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "MedPass Kiosk"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "toggle_language", "k.lang", key_display="F2", priority=True),
        Binding("d", "demo('disc')", "k.demo_disc", key_display="D"),
        Binding("m", "demo('disc2')", "k.demo_disc2", key_display="M"),
        Binding("s", "demo('stick')", "k.demo_stick", key_display="S"),
        Binding("ctrl+q", "quit", "k.quit", key_display="^Q", priority=True),
    ]

    #: "en" or "zh"; every screen re-renders when it changes.
    lang: reactive[str] = reactive("en")
    #: The cloud connection and outbox, as the last sync round left them.
    sync_status: reactive[SyncStatus | None] = reactive(None, always_update=True)

    def __init__(self, service: KioskService, *, demo: DemoMedia | None = None,
                 pin_hint: str | None = None, start_sync: bool = True,
                 start_retention: bool = True, config_file: str | Path | None = None,
                 idle_seconds: int | None = None, done_seconds: int | None = None) -> None:
        super().__init__()
        self.service = service
        self.demo = demo
        ui = service.config.ui
        #: Shown in the PIN dialog (the demo's PIN); never set on an appliance.
        self.pin_hint = pin_hint
        self.start_sync = start_sync
        self.start_retention = start_retention
        self.config_file = config_file
        self.idle_seconds = idle_seconds or ui.idle_seconds
        self.done_seconds = done_seconds or ui.done_seconds
        #: Media on the desk now, as the media thread last reported them.
        self.media: list[Medium] = []
        self.sync_loop: SyncLoop | None = None
        self.last_input = time.monotonic()
        self._idle_screen: Screen[Any] | None = None
        #: Media that started an import: not offered again while they stay inserted.
        self._used_media: set[tuple[object, ...]] = set()
        self.set_reactive(KioskApp.lang, ui.language)

    # --- start and stop -----------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return HomeScreen()

    def on_mount(self) -> None:
        # The desk's reads run in worker threads beside the event loop. With Python's
        # default 5 ms switch interval a worker waits up to 5 ms for the GIL after every
        # system call while the loop is busy drawing (Home's page checks 64 index files:
        # 20-45 ms of waiting at start-up). 1 ms keeps a worker's answer close to its work.
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self.service.media is not None:
            self.poll_media()
        if self.start_sync:
            self.sync_loop = self.service.sync_loop(on_status=self._sync_status_from_loop)
            self.sync_loop.start()
        self.read_sync_status()
        self.set_interval(1.0, self._check_idle)
        if self.start_retention:
            self.run_retention()
            self.set_interval(RETENTION_SECONDS, self.run_retention)
        if not self._pin_set():
            self.push_screen(SetPinDialog(), self._pin_chosen)  # first start: choose it now

    def _sync_status_from_loop(self, status: SyncStatus) -> None:
        """Called in the sync loop's thread: hand the status over as a message."""
        self.post_message(SyncStatusChanged(status))

    def on_unmount(self) -> None:
        if self.sync_loop is not None:
            self.sync_loop.stop(timeout=2.0)

    @work(thread=True, exclusive=True, group="media", exit_on_error=False)
    def poll_media(self) -> None:
        """Poll the media desk until the app stops; report changes as messages."""
        desk = self.service.media
        assert desk is not None
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                events_ = desk.poll(MEDIA_POLL_SECONDS)
            except KioskError as exc:
                if worker.is_cancelled:
                    return
                log.warning("media watcher: %s", error_kind(exc))
                time.sleep(1.0)  # udev hiccup: keep watching; a closed watcher ends the app
                continue
            if events_:
                self.post_message(MediaChanged(events_, desk.present()))

    @work(thread=True, exclusive=True, group="retention", exit_on_error=False)
    def run_retention(self) -> None:
        """Purge cases delivered and uploaded ``retention.days`` ago (off the event loop)."""
        try:
            purged = self.service.run_retention()
        except Exception:  # the desk must keep running; the next round tries again
            log.exception("retention run failed")
            return
        if purged:
            log.info("retention purged %d case(s): %s", len(purged),
                     ", ".join(v.case_id for v in purged))
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                self.call_from_thread(self._cases_purged)

    def _cases_purged(self) -> None:
        """Home lists today's cases: read them again."""
        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                screen.load_cases()

    @work(thread=True, exclusive=True, group="sync-status", exit_on_error=False)
    def read_sync_status(self) -> None:
        """The stored status at start-up (the loop's first round may take a while)."""
        try:
            self.post_message(SyncStatusChanged(self.service.sync_status()))
        except KioskError as exc:
            log.warning("no sync status: %s", exc.text)

    # --- messages from the background -----------------------------------------------------

    def on_media_changed(self, message: MediaChanged) -> None:
        self.media = message.present
        self.last_input = time.monotonic()  # a disc or stick going in is someone at the desk
        for event in message.events:
            if event.action is MediaAction.REMOVE:
                self._used_media.discard(event.medium.identity())
            screen = self.screen
            if isinstance(screen, KioskScreen):
                screen.media_event(event)
        self.refresh_bindings()

    def on_sync_status_changed(self, message: SyncStatusChanged) -> None:
        self.sync_status = message.status

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_input = time.monotonic()  # the idle timer counts from the last key
        await super().on_event(event)

    # --- what screens ask the app to do -------------------------------------------------------

    def media_unused(self, medium: Medium) -> bool:
        """Whether this inserted medium has not started an import yet."""
        return medium.identity() not in self._used_media

    def claim_medium(self, medium: Medium) -> None:
        """This medium is being imported: Home must not offer it again while it stays in."""
        self._used_media.add(medium.identity())

    @property
    def flow_running(self) -> bool:
        """Whether a patient flow is under way (Home is only passing through)."""
        return any(w.group == "flow" and w.is_running for w in self.workers)

    def start_import(self, medium: Medium) -> None:
        """A hospital medium was inserted at Home: import it and walk the patient flow."""
        self.claim_medium(medium)
        self.run_flow(device=medium.device, label=medium.label or medium.device)

    def open_case(self, case_id: str) -> None:
        """Home: continue with a case from today's list."""
        self.run_flow(case_id=case_id)

    def open_admin(self) -> None:
        """Home: the Admin screen, behind the coordinator PIN."""
        self.require_pin("admin", lambda: self.push_screen(AdminScreen()))

    def require_pin(self, purpose: str, granted: Callable[[], object], *,
                    case_id: str | None = None) -> None:
        """Call ``granted`` once the coordinator typed the PIN for ``purpose``.

        ``purpose`` is ``admin`` or an override (``unencrypted_export``, ``force_purge``,
        ``keep_patients``); the facade audits each attempt with it and ``case_id``. With no PIN
        set yet, the coordinator chooses one first (typed twice), which then counts as typed.
        """
        if not self._pin_set():
            def chosen(pin: str | None) -> None:
                self._pin_chosen(pin)
                if pin is not None and self._check_pin(pin, purpose, case_id):
                    granted()

            self.push_screen(SetPinDialog(), chosen)
            return

        def answered(ok: bool | None) -> None:
            if ok:
                granted()

        self.push_screen(PinDialog(purpose, case_id=case_id, hint=self.pin_hint), answered)

    def _pin_set(self) -> bool:
        try:
            return self.service.pin_status().set
        except KioskError:
            return True  # a damaged PIN file: the PIN dialog shows the core's message

    def _pin_chosen(self, pin: str | None) -> None:
        if pin is not None:
            self.notify(t("pin.set_done", self.lang))

    def _check_pin(self, pin: str, purpose: str, case_id: str | None) -> bool:
        try:
            return self.service.check_pin(pin, purpose, case_id=case_id).ok
        except KioskError as exc:
            self.push_screen(ErrorDialog(*error_say(exc)))
            return False

    def wake_sync(self) -> None:
        """Start a sync round now (after an import, on "check translations")."""
        if self.sync_loop is not None:
            self.sync_loop.wake()

    def return_home(self) -> None:
        """Clear the patient's screens (idle timeout): Home, with nothing of them left."""
        self.workers.cancel_group(self, "flow")
        while len(self.screen_stack) > 1:
            self.pop_screen()

    # --- the patient flow -----------------------------------------------------------------

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def run_flow(self, *, device: str | None = None, label: str | None = None,
                       case_id: str | None = None) -> None:
        """Import → Review → Case (reports, more discs) → Export → Done, then Home."""
        try:
            if device is not None:
                report = await self._import(device, label, None)
                if report is None:
                    return
                report = await self._review(report, device, label)
                if report is None:
                    return
                case_id = report["case_id"]
            assert case_id is not None
            await self._case_loop(case_id)
        except Exception as exc:  # a bug must not take the desk down: say it, go Home
            log.exception("patient flow failed")
            await self.push_screen_wait(ErrorDialog(*error_say(exc)))

    async def _case_loop(self, case_id: str) -> None:
        while True:
            action: CaseAction = await self.push_screen_wait(CaseScreen(case_id))
            if action.kind == "reports":
                await self.push_screen_wait(ReportsScreen(case_id))
            elif action.kind == "add" and action.device is not None:
                medium = next((m for m in self.media if m.device == action.device), None)
                label = (medium.label if medium else None) or action.device
                report = await self._import(action.device, label, case_id)
                if report is not None and await self._review(report, action.device,
                                                             label) is None:
                    return
            elif action.kind == "export":
                export = await self.push_screen_wait(ExportScreen(case_id))
                if export is None:
                    continue
                await self.push_screen_wait(
                    DoneScreen(case_id, export, seconds=self.done_seconds))
                return
            else:
                return

    async def _review(self, report: dict[str, Any], device: str,
                      label: str | None) -> dict[str, Any] | None:
        """Review the import; the report gone on with, or None for Home.

        A password typed for encrypted archives on the medium imports it again into the same
        case (what is stored already is counted, not copied), then reviews that import.
        """
        while True:
            answer = await self.push_screen_wait(ReviewScreen(report))
            if not isinstance(answer, str):
                return report if answer else None
            again = await self._import(device, label, report["case_id"],
                                       archive_password=answer)
            if again is not None:
                report = again

    async def _import(self, device: str, label: str | None, case_id: str | None, *,
                      archive_password: str | None = None) -> dict[str, Any] | None:
        """The Import screen, then "no images" when there were none; None when nothing came.

        When all there was is in encrypted archives, the password is asked for here (there is
        nothing to review yet) and the medium imported again with it.
        """
        report = await self.push_screen_wait(ImportScreen(
            device=device, case_id=case_id, label=label, archive_password=archive_password))
        if report is None:
            return None
        self.wake_sync()  # upload soon; an inbox translation may match the new case
        locked = locked_archives(report)
        if report["case_id"] is None and locked:
            password = await self.push_screen_wait(ArchivePasswordDialog(
                locked, wrong=archive_password is not None))
            if password is None:
                return None
            return await self._import(device, label, case_id, archive_password=password)
        if report["case_id"] is None:
            no_dicom = report.get("no_dicom")  # the core's words, English and Chinese
            text: Say = (dict(no_dicom) if no_dicom else
                         ("nothing.text", {"label": label or device,
                                           "ignored": len(report["ignored"])}))
            await self.push_screen_wait(ErrorDialog(("nothing.title", {}), text))
            return None
        return report

    # --- keys -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "demo":
            offers: frozenset[str] = getattr(self.screen, "demo_offers", frozenset())
            return self.demo is not None and parameters[0] in offers
        if action == "quit":
            return self.demo is not None  # the appliance quits from Admin only
        return True

    def action_toggle_language(self) -> None:
        self.lang = other(self.lang)

    def action_demo(self, what: str) -> None:
        if self.demo is not None and what in self.demo.insert:
            self.demo.insert[what]()

    def action_shutdown(self) -> None:
        """Admin's "quit": end the kiosk program (the appliance's service restarts it)."""
        self.exit()

    def _check_idle(self) -> None:
        """Once a second: clear a patient's screens nobody has touched for ``idle_seconds``."""
        alive()  # systemd watchdog: a hung event loop stops pinging and gets restarted
        now = time.monotonic()
        if self.screen is not self._idle_screen:
            # A new screen is activity too (an import that finished after a long wait at Home
            # must not be cleared the moment its review shows).
            self._idle_screen, self.last_input = self.screen, now
            return
        if len(self.screen_stack) <= 1:
            return
        if any(getattr(s, "busy", False) for s in self.screen_stack):
            self.last_input = now  # an import or export runs: never interrupt it
            return
        if now - self.last_input >= self.idle_seconds:
            self.return_home()


def make_app(service: KioskService, **options: Any) -> KioskApp:
    """Build the desk app for ``service`` (options: see :class:`KioskApp`); tests reuse it."""
    return KioskApp(service, **options)


def run_app(service: KioskService, **options: Any) -> int:
    """Run the desk app full screen until it is quit; 0 on a normal exit.

    Logging goes to ``logs/kiosk.log`` in the data directory (the terminal belongs to the UI),
    size-bounded and without exception messages (see :mod:`kiosk.security.logfile`).
    """
    handler = open_log(service.locations.logs_dir)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        make_app(service, **options).run()
    finally:
        root.removeHandler(handler)
        handler.close()
    return 0


if TYPE_CHECKING:
    from kiosk_tui.desk import Desk

    def _is_a_desk(app: KioskApp) -> Desk:
        """mypy checks here that the app gives screens everything :class:`Desk` promises."""
        return app
