"""The service facade: the one object the CLI and the UI talk to.

It hides the store, the database and the importer behind intent-level calls and hands progress
back through callbacks (the UI turns them into messages from its worker threads).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.cloud.sync import Syncer, SyncReport, SyncStatus, report_states
from kiosk.cloud.sync_loop import StatusCallback, SyncLoop
from kiosk.cloud.uploader import SyncProgress
from kiosk.config import Config
from kiosk.errors import UsageError
from kiosk.ingest.identity import confirmed_identity, filing, one_person_problem
from kiosk.ingest.importer import Importer, ProgressCallback
from kiosk.links.case_links import CaseLinks
from kiosk.reports.merger import IncomingReport
from kiosk.retention.policy import CaseRetention
from kiosk.retention.purge import (
    PurgeResult,
    UploadState,
    report_staging_prefix,
    upload_state,
)
from kiosk.retention.purger import Purger
from kiosk.security.audit import AuditLog
from kiosk.security.pin import PinCheck, PinStatus, PinStore
from kiosk.security.pin_guard import PinGuard
from kiosk.service.link_desk import LinkDesk
from kiosk.sources.opener import open_source
from kiosk.sources.source import Source
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog, now_iso
from kiosk.store.durable import remove_stale_temps
from kiosk.store.locations import Locations

if TYPE_CHECKING:
    from kiosk.links.printer import ReceiptPrinter
    from kiosk.media.desk import MediaDesk
    from kiosk.package.aeszip import KeySupply
    from kiosk.package.export import ExportProgress

log = logging.getLogger(__name__)

def _label_digest(label: str | None) -> str | None:
    """A medium's label for the audit trail: hashed, since hospitals sometimes write the
    patient's name on it (entries hold ids and hashes only)."""
    return hashlib.sha256(label.encode()).hexdigest()[:16] if label else None


class KioskService(LinkDesk):
    """Everything the kiosk can do, as calls the UI and the CLI share.

    The links, QR and slip calls are in :class:`kiosk.service.link_desk.LinkDesk`.
    """

    #: Removable media on the desk (watcher, roles, mounts); set by
    #: :func:`kiosk.bootstrap.attach_media` when the caller wants media detection.
    media: MediaDesk | None = None

    def __init__(self, config: Config, locations: Locations, catalog: Catalog,
                 store: BlobStore, audit: AuditLog, importer: Importer, *,
                 links: CaseLinks | None = None,
                 printer_factory: Callable[[], ReceiptPrinter] | None = None,
                 syncer: Syncer | None = None, pins: PinStore | None = None) -> None:
        self.config = config
        self.locations = locations
        self.catalog = catalog
        self.store = store
        self.audit = audit
        self.importer = importer
        self._links = links
        # The printer is built on first use: python-escpos takes half a second to import.
        self._printer_factory = printer_factory
        self._printer: ReceiptPrinter | None = None
        self._syncer = syncer
        self._sync_loop: SyncLoop | None = None
        #: The coordinator PIN (tests give it a fake clock).
        self.pins = pins or PinStore(locations.pin_file)
        self.pin_guard = PinGuard(self.pins, audit)
        #: Seconds since the epoch, for retention (tests pass a fake clock).
        self.clock: Callable[[], float] = time.time
        self.purger = Purger(catalog, store, locations, audit, config.retention.days,
                             lambda: self.clock())

    def recover(self) -> list[str]:
        """After a crash: mark dead jobs interrupted and drop their staging folders."""
        stale = self.catalog.mark_interrupted()
        self.store.clean_tmp(keep=self.catalog.running_job_ids())
        remove_stale_temps(self.locations.data_dir)  # the database's own atomic-write temps
        for folder in (self.catalog.db.paths.cases_dir, self.catalog.db.paths.index_dir):
            if folder.is_dir():
                remove_stale_temps(folder)
        return stale

    def import_path(self, spec: str | Path, *, case_id: str | None = None,
                    on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None,
                    archive_password: str | None = None) -> dict[str, Any]:
        """Import a directory, ISO image or block device; return the import report.

        ``archive_password`` opens encrypted zip archives on the medium (never logged).

        Raises
        ------
        SourceError
            ``spec`` is not a readable medium.
        """
        source = open_source(spec, self.importer.options.limits)
        try:
            return self.import_source(source, case_id=case_id, on_progress=on_progress,
                                      cancel=cancel, archive_password=archive_password)
        finally:
            source.close()

    def import_source(self, source: Source, *, case_id: str | None = None,
                      on_progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None,
                      archive_password: str | None = None) -> dict[str, Any]:
        """Import an already opened :class:`~kiosk.sources.source.Source`."""
        if case_id is not None and not case_id.strip():
            raise UsageError("The case id must not be empty.")
        report = self.importer.run(source, case_id=case_id, on_progress=on_progress,
                                   cancel=cancel, archive_password=archive_password)
        self.audit.append("import", job_id=report["job_id"], case_id=report["case_id"],
                          source_label_sha256=_label_digest(source.label),
                          instances=report["instances"], complete=report["complete"])
        return report

    def import_medium(self, device: str, *, case_id: str | None = None,
                      on_progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None,
                      archive_password: str | None = None) -> dict[str, Any]:
        """Import the inserted medium at ``device`` (as :attr:`media` reports it).

        Discs are read without mounting; other media are mounted read-only for the import and
        unmounted afterwards. A medium pulled mid-import ends the import with the report's
        ``error`` saying it was removed; what was read before is kept and verified.

        Raises
        ------
        UsageError
            Media detection is not attached.
        MediaError, SourceError
            Nothing is inserted at ``device``, or it cannot be mounted or read.
        """
        if self.media is None:
            raise UsageError("Media detection is not running in this kiosk.")
        medium = self.media.get(device)
        with self.media.source(device) as source:
            report = self.import_source(source, case_id=case_id, on_progress=on_progress,
                                        cancel=cancel, archive_password=archive_password)
        # Which physical medium the images came from (vendor, model, serial, label, size).
        described = medium.to_json() | {"label": _label_digest(medium.label)}
        self.audit.append("import_medium", job_id=report["job_id"], case_id=report["case_id"],
                          medium=described)
        return report

    def prepare_export(self, case_id: str) -> KeySupply:
        """Start deriving the entry keys of an encrypted export of ``case_id`` now.

        Each file of the archive needs its own PBKDF2 key (a millisecond of CPU; two seconds
        for a 2,000-image CT). The desk calls this when the patient's stick is ready, seconds
        before the coordinator confirms, so the keys are mostly derived (in a child process)
        before writing starts. Pass the result to :meth:`export_case` (which closes it) or
        ``close()`` it. The passphrase is made now and, as always, only the export's report
        shows it.

        Raises
        ------
        UsageError
            No such case.
        """
        from kiosk.package.export import start_keys

        detail = self.case_detail(case_id)
        keys = start_keys(True)
        assert keys is not None
        # Images, each report's PDF and its DICOM instance, DICOMDIR, MANIFEST.JSON and .JWS:
        # the plan's exact count replaces this estimate when the export starts.
        keys.expect(sum(s["instances"] for s in detail["studies"])
                    + 2 * len(self.reports(case_id)) + 3)
        return keys

    def export_case(self, case_id: str, target: str | Path, *, encrypt: bool = True,
                    split_size: int | None = None,
                    on_progress: Callable[[ExportProgress], None] | None = None,
                    cancel: threading.Event | None = None,
                    keys: KeySupply | None = None) -> dict[str, Any]:
        """Write the patient package of ``case_id`` to ``target`` and verify it.

        Returns the export report (DESIGN.md §4); the passphrase is in it and nowhere else.
        ``keys`` (:func:`kiosk.package.export.start_keys`, made as early as possible) carries the
        passphrase; by default it is made here, before the package is planned.

        Raises
        ------
        UsageError
            No such case or nothing to export.
        ExportError
            The stick is full, read-only, removed, or the read-back failed.
        """
        # Imported here: packaging pulls in the AES and FileSet machinery an import never needs.
        from kiosk.package.export import export_package, export_summary, start_keys
        from kiosk.package.plan import plan_package

        target = Path(target)
        self.require_one_person(case_id)
        if keys is None:
            keys = start_keys(encrypt)  # entry keys are derived while the package is planned
        try:
            plan = plan_package(self.catalog, self.store, case_id,
                                kiosk_id=self.config.kiosk_id, encrypted=encrypt,
                                signer=self.manifest_signer)
        except BaseException:
            if keys is not None:
                keys.close()
            raise
        result = export_package(plan, self.store, target, encrypt=encrypt, keys=keys,
                                split_size=split_size, on_progress=on_progress, cancel=cancel)
        manifest = next(f for f in plan.files if f.arcname == "MANIFEST.JSON")
        signature = next((f for f in plan.files if f.arcname == "MANIFEST.JWS"), None)
        # Kept for the phone: a short link's registration carries the package's manifest
        # and signature, so the gateway shows the same chain of custody as the stick.
        manifest_blob = self.store.put_bytes(manifest.data) if manifest.data else None
        self.catalog.record_export(case_id, {
            "time": now_iso(), "encrypted": encrypt, "folder": result.folder.name,
            "files": result.files, "bytes": result.bytes, "verified": True,
            "manifest_blob": manifest_blob,
            "manifest_jws": signature.data.decode() if signature and signature.data else None})
        self.audit.append("export", case_id=case_id, encrypted=encrypt,
                          folder=result.folder.name, files=result.files, bytes=result.bytes,
                          manifest_sha256=manifest.sha256)
        return export_summary(result, case_id, target, link=self.case_link(case_id).url) | {
            "fingerprint": plan.fingerprint}

    # --- purge and retention (kiosk.retention.purger) ----------------------------------------

    def purge_case(self, case_id: str, *, force: bool = False,
                   reason: str = "coordinator") -> PurgeResult:
        """Delete a case and what only it used; audited (see :meth:`Purger.purge`)."""
        return self.purger.purge(case_id, force=force, reason=reason)

    def upload_state(self, case_id: str) -> UploadState:
        """Whether everything of ``case_id`` is on the office's server (see
        :mod:`kiosk.retention.purge`)."""
        return upload_state(self.catalog, self.store, case_id)

    def retention_review(self) -> list[CaseRetention]:
        """Every case's retention verdict now (``retention.days``; nothing is changed)."""
        return self.purger.review()

    def run_retention(self, *, dry_run: bool = False) -> list[CaseRetention]:
        """Purge every case due under ``retention.days`` (see :meth:`Purger.run`)."""
        return self.purger.run(dry_run=dry_run)

    def case_summaries(self, *, limit: int | None = None, since: str | None = None,
                       find: str | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Case summaries, newest first, from the case index (see
        :meth:`Catalog.case_summaries`: ``limit``, ``since``, ``find``, ``offset``)."""
        return self.catalog.case_summaries(limit=limit, since=since, find=find, offset=offset)

    def case_page(self, *, limit: int | None = None, find: str | None = None,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """``(summaries, total)``: a page of :meth:`case_summaries` and how many match, from
        one look at the case index (:meth:`Catalog.case_page`)."""
        return self.catalog.case_page(limit=limit, find=find, offset=offset)

    def summary_lines(self, *, since: str | None = None) -> Iterator[bytes]:
        """Every case summary, newest first, one line of JSON each (see
        :meth:`Catalog.summary_lines`)."""
        return self.catalog.summary_lines(since=since)

    def count_cases(self, *, since: str | None = None, find: str | None = None) -> int:
        """How many cases :meth:`case_summaries` would list without a limit."""
        return self.catalog.count_cases(since=since, find=find)

    def require_one_person(self, case_id: str) -> None:
        """Refuse a case that holds several patients not confirmed as one person.

        Raises
        ------
        UsageError
            No such case, or several patient identities (the message says how to split or
            confirm).
        """
        problem = one_person_problem(self.case_detail(case_id))
        if problem is not None:
            raise UsageError(problem)

    def hospitals(self) -> list[dict[str, Any]]:
        """Each issuing hospital's quality card: media, instances, quirks (no patient data)."""
        return self.catalog.hospitals()

    def case_detail(self, case_id: str) -> dict[str, Any]:
        """A case with its studies and series.

        Raises
        ------
        UsageError
            No such case.
        """
        case = self.catalog.case(case_id)
        if case is None:
            raise UsageError(f"There is no case {case_id}. `kiosk cases` lists them.")
        return case | {"studies": self.catalog.studies(case_id)}

    # --- reports and cloud sync ------------------------------------------------------------

    @property
    def syncer(self) -> Syncer:
        """The sync engine (outbox, uploads, translation pulls).

        Raises
        ------
        UsageError
            This service was built without one.
        """
        if self._syncer is None:
            raise UsageError("Cloud sync is not set up in this kiosk.")
        return self._syncer

    def reports(self, case_id: str) -> list[dict[str, Any]]:
        """The merged reports of a case (keys: see :mod:`kiosk.reports.merger`), oldest first."""
        return self.catalog.reports(case_id)

    def attach_report(self, case_id: str, pdf_path: str | Path, language: str, role: str, *,
                      study_uid: str | None = None, certified: bool = False,
                      translator: str | None = None, title: str | None = None,
                      source: str = "coordinator") -> dict[str, Any]:
        """Merge a report PDF from a file (coordinator's pick, or one found on the medium).

        Stores the PDF and a new Encapsulated PDF instance in a new series of the study
        (``study_uid``, else the case's most recent study), queues it for upload and returns
        the report. Attaching the same file again returns the existing report.

        Raises
        ------
        UsageError
            No such case or study, the file is unreadable or not a PDF, bad language or role.
        """
        try:
            pdf = Path(pdf_path).read_bytes()
        except OSError as exc:
            raise UsageError(f"The report {pdf_path} cannot be read: {exc.strerror}.") from None
        digest = hashlib.sha256(pdf).hexdigest()
        report, created = self.syncer.merger.merge(IncomingReport(
            origin=f"{source}:{case_id}:{language}:{role}:{digest}", case_id=case_id,
            study_uid=study_uid, pdf=pdf, language=language, role=role, certified=certified,
            source=source, translator=translator, title=title,
            detail=f"file {Path(pdf_path).name}"))
        if created:
            self.audit.append("report_merged", report_id=report["report_id"], case_id=case_id,
                              source=source, language=language, role=role,
                              pdf_sha256=report["pdf_sha256"],
                              sop_instance_uid=report["sop_instance_uid"])
            if self._sync_loop is not None:
                self._sync_loop.wake()  # upload it soon, not at the next interval
        return report

    def sync_status(self) -> SyncStatus:
        """Online/offline/error/disabled, the message to show and the outbox counts."""
        return self.syncer.status()

    def sync_once(self, on_progress: Callable[[SyncProgress], None] | None = None,
                  cancel: threading.Event | None = None) -> SyncReport:
        """One sync round now: inbox, uploads, translation pulls."""
        return self.syncer.run_once(on_progress, cancel)

    def sync_retry_failed(self) -> int:
        """Retry failed uploads now (after the office fixed the account); return how many."""
        count = self.syncer.retry_failed()
        if self._sync_loop is not None:
            self._sync_loop.wake()
        return count

    def sync_loop(self, on_status: StatusCallback | None = None,
                  on_progress: Callable[[SyncProgress], None] | None = None) -> SyncLoop:
        """The background loop for the app: ``loop.start()`` … ``loop.stop()``."""
        self._sync_loop = SyncLoop(self.syncer, on_status=on_status, on_progress=on_progress)
        return self._sync_loop

    # --- the desk UI: identity, reports on the medium, export checks, admin ----------------

    def confirm_identity(self, case_id: str, *, passport_name: str,
                         birth_date: str) -> dict[str, Any]:
        """Record that the coordinator checked whose images these are; return the identity.

        Every patient still in the case is confirmed as this person: patients who are someone
        else must be moved out first with :meth:`split_patients`.

        Raises
        ------
        UsageError
            No such case, an empty name, or a birth date that is not ``YYYY-MM-DD``.
        """
        case = self.case_detail(case_id)
        identity = confirmed_identity(passport_name, birth_date,
                                      [p["patient_id"] for p in case["patients"]], now_iso())
        self.catalog.set_identity(case_id, identity)
        # Ids only: the audit trail never holds names or birth dates.
        self.audit.append("identity_confirmed", case_id=case_id,
                          patients=len(identity["patient_ids"]))
        return identity

    def split_patients(self, case_id: str, patient_ids: list[str]) -> str:
        """Move the studies of ``patient_ids`` (someone else's) into a new case; return its id.

        Raises
        ------
        UsageError
            No such case, or none of its studies belongs to those patients.
        """
        self.case_detail(case_id)
        new_id = self.catalog.split_case(case_id, patient_ids)
        if new_id is None:
            raise UsageError(f"Case {case_id} has no study of patient(s) "
                             f"{', '.join(patient_ids)}.")
        self.audit.append("case_split", case_id=case_id, new_case_id=new_id,
                          patients=len(patient_ids))
        return new_id

    def file_by_patient(self, report: dict[str, Any], *, prior: list[str],
                        same_person: bool = False) -> list[dict[str, Any]]:
        """After a command-line import: each patient in a case of their own (see
        :func:`~kiosk.ingest.identity.filing`); ``same_person`` records the coordinator's
        confirmation that the case's differing ids are one person (audited). Returns the cases
        the import's patients are in: ``case_id`` and ``patient_ids``.
        """
        case_id = report["case_id"]
        if case_id is None:  # nothing imported
            return []
        groups = filing([p["patient_id"] for p in report["patients"]], prior,
                        same_person=same_person)
        cases = [{"case_id": case_id, "patient_ids": groups[0]}]
        cases += [{"case_id": self.split_patients(case_id, ids), "patient_ids": ids}
                  for ids in groups[1:]]
        if same_person and len(groups[0]) > 1:
            self.catalog.set_same_person(case_id, groups[0])
            self.audit.append("same_person_confirmed", case_id=case_id,
                              patients=len(groups[0]), source="cli")
        return cases

    def report_status(self, case_id: str) -> list[dict[str, Any]]:
        """The original (zh) and the translation (en) of a case: missing, pending or synced.

        ``missing``: the kiosk has none. ``pending``: the kiosk has it (it goes onto the
        patient's stick) but the cloud does not yet. ``synced``: the cloud has it too.
        Each entry: ``role``, ``language``, ``state``, ``reports`` (the merged reports).
        """
        syncer = self._syncer
        if syncer is None:
            return report_states(self.reports(case_id), set())
        return report_states(self.reports(case_id), syncer.uploaded_instances(case_id))

    def report_files_on_medium(self, device: str, *, limit: int = 20) -> list[str]:
        """PDF files on the inserted medium at ``device`` (a hospital report, usually).

        Raises
        ------
        UsageError
            Media detection is not attached.
        MediaError, SourceError
            Nothing is inserted at ``device``, or it cannot be read.
        """
        from kiosk.reports.merger import MAX_PDF_BYTES
        from kiosk.sources.source import files_named

        if self.media is None:
            raise UsageError("Media detection is not running in this kiosk.")
        with self.media.source(device) as source:
            return files_named(source, ".pdf", max_size=MAX_PDF_BYTES, limit=limit)

    def attach_report_from_medium(self, case_id: str, device: str, path: str, *,
                                  language: str = "zh",
                                  role: str = "original") -> dict[str, Any]:
        """Merge the PDF ``path`` on the medium at ``device`` into ``case_id`` (source medium).

        Raises
        ------
        UsageError
            No such case, not a PDF, or media detection is not attached.
        MediaError, SourceError, SourceReadError
            The medium is gone or the file cannot be read.
        """
        import shutil
        import tempfile

        from kiosk.reports.merger import MAX_PDF_BYTES

        if self.media is None:
            raise UsageError("Media detection is not running in this kiosk.")
        with self.media.source(device) as source, source.open(path) as fh:
            data = fh.read(MAX_PDF_BYTES + 1)
        if len(data) > MAX_PDF_BYTES:
            raise UsageError(f"{path} is too large to be a report.")
        # attach_report reads a file: stage the bytes privately under the kiosk's tmp folder.
        folder = Path(tempfile.mkdtemp(prefix=report_staging_prefix(case_id),
                                       dir=self.locations.tmp_dir))
        try:
            staged = folder / Path(path).name
            staged.write_bytes(data)
            return self.attach_report(case_id, staged, language, role, source="medium")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def export_check(self, case_id: str, target: str | Path) -> dict[str, Any]:
        """Before writing: the package's approximate size, the stick's free space, its files.

        ``needed`` is an estimate (images + reports + margin); :meth:`export_case` checks the
        exact figure again. ``others`` counts what is already on the stick (never touched).

        Raises
        ------
        UsageError
            No such case.
        OSError
            The target cannot be read.
        """
        from kiosk.package.space import target_check

        return target_check(self.case_detail(case_id)["studies"], self.reports(case_id),
                            self.store, target)

    # --- the coordinator PIN (kiosk.security.pin_guard) ---------------------------------------

    def pin_status(self) -> PinStatus:
        """Whether a coordinator PIN is set, and the lockout (never the PIN)."""
        return self.pin_guard.status()

    def set_pin(self, pin: str, *, source: str, allow_weak: bool = False) -> None:
        """Store a new coordinator PIN, audited (see :meth:`PinGuard.set`)."""
        self.pin_guard.set(pin, source=source, allow_weak=allow_weak)

    def check_pin(self, pin: str, purpose: str, *, case_id: str | None = None) -> PinCheck:
        """Check a typed PIN for ``purpose``, audited (see :meth:`PinGuard.check`)."""
        return self.pin_guard.check(pin, purpose, case_id=case_id)

    def pin_matches(self, pin: str) -> bool:
        """Whether ``pin`` is the PIN in force, without counting a failure (the demo's hint)."""
        return self.pin_guard.matches(pin)

    def migrate_config_pin(self) -> bool:
        """Hash a plain ``ui.admin_pin`` when no PIN is stored yet (see :meth:`PinGuard`)."""
        return self.pin_guard.migrate_plain(self.config.ui.admin_pin)

    def sync_queue(self, recent_cases: int = 50) -> list[dict[str, Any]]:
        """Outbox jobs of the configured cloud, oldest first (Admin's sync queue).

        Every job not done yet, and the finished ones of the ``recent_cases`` newest cases:
        the history of every upload ever made is not read for a screen.
        """
        syncer = self.syncer
        if syncer.cloud is None:
            return []
        jobs = {j["job_id"]: j for j in syncer.outbox.waiting(destination=syncer.destination)}
        for case in self.case_summaries(limit=recent_cases):
            for job in syncer.outbox.jobs(case_id=case["case_id"],
                                          destination=syncer.destination):
                jobs.setdefault(job["job_id"], job)
        return sorted(jobs.values(), key=lambda j: (j.get("created_ts", 0.0), j["job_id"]))

    def recent_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` audit entries, newest last (ids and hashes only)."""
        return self.audit.tail(limit)
