"""Import a medium into a case: scan, ingest, verify, reconcile, record.

Flow (DESIGN.md §2)::

    count entries ─▶ ingest files in parallel (one pass each) ─▶ batch-commit blobs (syncfs)
      ─▶ verify (re-hash stored blobs, pixel data, per-series counts, DICOMDIR) ─▶ merge into case

Both passes over the medium obey its :class:`~kiosk.sources.scan_limits.ScanLimits`: too many files
or too much time stop the scan (what was read is kept and verified, the import is incomplete);
folders too deep and files too large are left out with a reason.

The job is persisted as "running" before any work, so a power cut leaves it visibly
interrupted, never complete. Blobs only become visible once durable, and the case only
references blobs that are; re-running the same import reuses what is stored and duplicates
nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from kiosk.dicom.names import DecodedName, decode_person_name
from kiosk.errors import KioskError, MediumRemovedError, SourceReadError
from kiosk.ingest.one_pass import Ignored, Outcome, Rejected, ingest_file
from kiosk.ingest.quirks import count_quirks, has_lowercase, issuer
from kiosk.sources.archive import SEPARATOR, ArchiveSource
from kiosk.sources.contents import classify, no_dicom_message
from kiosk.sources.dicomdir import MAX_DICOMDIR_BYTES, DicomdirIndex, read_dicomdir
from kiosk.sources.scan_limits import MAX_FILE_BYTES, MAX_FILES, MAX_SECONDS, ScanLimits
from kiosk.sources.source import Entry, EntryKind, Source, display_path
from kiosk.store.blobstore import BlobStore, PendingBlob
from kiosk.store.catalog import Catalog, InstanceRow

_VERIFY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImportProgress:
    """A progress event; the UI shows the latest one (they replace each other)."""

    phase: str  # counting | copying | verifying | saving | done
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str
    elapsed: float


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True)
class ImportOptions:
    """Tuning knobs, from :class:`kiosk.config.ImportSettings`."""

    workers: int = 2
    read_retries: int = 3
    sync_batch_bytes: int = 256 * 1024 * 1024
    limits: ScanLimits = field(default_factory=ScanLimits)


class ImportCancelled(KioskError):
    """The coordinator cancelled the import; nothing was added to the case."""

    default_title = "Import cancelled"
    exit_code = 1


@dataclass
class _Run:
    """Mutable state of one import run.

    Per instance only a compact :class:`InstanceRow` is kept (headers are dropped as soon as
    a file is taken), so memory grows by a few hundred bytes per image, not kilobytes.
    """

    rows: list[InstanceRow] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)  # DICOM files found, for DICOMDIR checks
    pending: list[PendingBlob] = field(default_factory=list)
    pending_bytes: int = 0
    batches: list[Future[set[str]]] = field(default_factory=list)  # commit+verify: bad hashes
    ignored: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    dicomdirs: list[DicomdirIndex] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    names: dict[tuple[bytes, str], DecodedName] = field(default_factory=dict)
    patients: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    study_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    files_done: int = 0
    bytes_done: int = 0
    error: str | None = None
    #: The stop limit the scan ran into (``max_files``/``max_seconds``), if any.
    stopped: str | None = None
    too_deep: int = 0  # folders not entered (import.max_depth)
    too_large: int = 0  # files not copied (import.max_file_bytes)
    #: Quirks counted while reading (kiosk.ingest.quirks), and who issued the medium.
    quirks: Counter[str] = field(default_factory=Counter)
    institutions: Counter[str] = field(default_factory=Counter)
    #: The report's ``archives``: one item per zip archive found (kiosk.sources.archive).
    archives: list[dict[str, Any]] = field(default_factory=list)
    #: Members of archives found, waiting to be read (after the file that was one).
    queued: deque[Entry] = field(default_factory=deque)
    extra_files: int = 0  # members listed, for progress
    extra_bytes: int = 0


class Importer:
    """Runs imports against one store and catalog."""

    def __init__(self, catalog: Catalog, store: BlobStore, options: ImportOptions) -> None:
        self.catalog = catalog
        self.store = store
        self.options = options

    def run(
        self,
        source: Source,
        *,
        case_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        archive_password: str | None = None,
    ) -> dict[str, Any]:
        """Import ``source`` and return the import report (DESIGN.md §4).

        The members of zip archives on the medium are imported like its files
        (:class:`~kiosk.sources.archive.ArchiveSource`); ``archive_password`` opens encrypted
        ones.

        Raises
        ------
        ImportCancelled
            ``cancel`` was set; staged data is discarded and the case is unchanged.
        """
        started = time.monotonic()
        notify = on_progress or (lambda _p: None)
        resumed_from = None
        if case_id is None:
            resumed_from = self._interrupted_case(source)
            case_id = resumed_from or self.catalog.new_case_id()
        job_id = self.catalog.start_job("import", case_id=case_id, source=source.description,
                                        label=source.label)
        staging = self.store.tmp_dir / job_id
        staging.mkdir(parents=True, exist_ok=True)
        run = _Run()
        if resumed_from:
            run.warnings.append(f"Resuming the interrupted import of this medium into case "
                                f"{case_id}; images already stored are not copied again.")
        deadline = self.options.limits.deadline()
        # Archives found while reading are inflated, when they must be, into the job's staging.
        archives = ArchiveSource(source, password=archive_password, limits=self.options.limits,
                                 spool_dir=staging)
        try:
            entries, bytes_total = self._list(source, notify, started, deadline)
            files_total = min(len(entries), self.options.limits.max_files)

            def progress(phase: str, current: str) -> None:
                notify(ImportProgress(phase, run.files_done, files_total + run.extra_files,
                                      run.bytes_done, bytes_total + run.extra_bytes, current,
                                      time.monotonic() - started))

            # One committer thread makes batch N durable and re-hashes it while the readers
            # fill batch N+1, so only the last batch's sync and verify wait at the end.
            with ThreadPoolExecutor(1, thread_name_prefix="commit") as committer:
                try:
                    self._ingest_all(archives, entries, staging, run, progress, cancel,
                                     committer, deadline)
                except MediumRemovedError as exc:
                    run.error = exc.text
                except ImportCancelled:
                    self.store.discard(run.pending)
                    run.pending = []
                    raise
                finally:
                    self._flush(run, committer)
                    progress("verifying", "")
                    bad = set().union(*(f.result() for f in run.batches))
            progress("saving", "")
            report = self._record(source, case_id, job_id, run, bad)
        except ImportCancelled:
            self.catalog.finish_job(job_id, "cancelled")
            raise
        except BaseException as exc:
            self.catalog.finish_job(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            archives.close()
            shutil.rmtree(staging, ignore_errors=True)
        report["seconds"] = round(time.monotonic() - started, 3)
        notify(ImportProgress("done", run.files_done, files_total + run.extra_files,
                              run.bytes_done, bytes_total + run.extra_bytes, "",
                              time.monotonic() - started))
        return report

    # --- phases ----------------------------------------------------------------------------

    def _interrupted_case(self, source: Source) -> str | None:
        """The case of an earlier import of this medium that did not finish, if any."""
        self.catalog.mark_interrupted()
        jobs = self.catalog.jobs(kind="import", source=source.description)
        last = [j for j in jobs if j.get("label") == source.label]
        if last and last[-1]["state"] in ("interrupted", "incomplete"):
            return str(last[-1]["case_id"])
        return None

    def _list(self, source: Source, notify: ProgressCallback, started: float,
              deadline: float) -> tuple[list[Entry], int]:
        """List the medium once (metadata only), in the order it will be read; and its bytes.

        Listing first gives progress its ETA and lets the files be read in disc order
        (:func:`disc_order`). It stops where the scan will stop: one entry past ``max_files``
        (so the scan can tell that there is more) or at the deadline.
        """
        limits = self.options.limits
        entries: list[Entry] = []
        size = 0
        for entry in source.entries(max_depth=limits.max_depth):
            if len(entries) > limits.max_files or limits.clock() >= deadline:
                break
            entries.append(entry)
            size += max(entry.size, 0)
            if len(entries) % 5000 == 0:
                notify(ImportProgress("counting", 0, len(entries), 0, size,
                                      display_path(entry.path), time.monotonic() - started))
        # Under max_files the scan reads the first max_files listed, as the limit promises, in
        # disc order; one more entry past them only tells the scan to stop there.
        limit = limits.max_files
        return disc_order(entries[:limit]) + entries[limit:], size

    def _ingest_all(self, source: ArchiveSource, entries: list[Entry], staging: Any, run: _Run,
                    progress: Callable[[str, str], None],
                    cancel: threading.Event | None, committer: ThreadPoolExecutor,
                    deadline: float) -> None:
        window = self.options.workers * 4  # bounded in-flight work keeps memory flat
        limits = self.options.limits
        seen = 0
        inflight: deque[tuple[Entry, Future[Outcome]]] = deque()
        last_note = 0.0

        def settle(block_until: int) -> None:
            nonlocal last_note
            while len(inflight) > block_until:
                entry, fut = inflight.popleft()
                outcome = fut.result()
                if isinstance(outcome, Ignored) and outcome.archive:
                    self._expand(source, entry, run)
                else:
                    self._take(outcome, run)
                run.files_done += 1
                run.bytes_done += max(entry.size, 0)
                now = time.monotonic()
                if now - last_note >= 0.1:  # coalesce: at most 10 events a second
                    last_note = now
                    progress("copying", display_path(entry.path))
                if run.pending_bytes >= self.options.sync_batch_bytes:
                    self._flush(run, committer)

        with ThreadPoolExecutor(self.options.workers, thread_name_prefix="ingest") as pool:
            try:
                for entry in self._with_members(entries, run, settle):
                    if cancel is not None and cancel.is_set():
                        raise ImportCancelled("The import was cancelled; nothing was added.")
                    # Checked before each entry is started; files already reading finish.
                    stop = (MAX_FILES if seen >= limits.max_files
                            else MAX_SECONDS if limits.clock() >= deadline else None)
                    if stop is not None:
                        run.stopped, run.error = stop, limits.stop_message(stop)
                        break
                    seen += 1
                    if entry.kind is not EntryKind.FILE:
                        self._non_file(entry, run, limits)
                        run.files_done += 1
                        continue
                    if entry.path.rpartition("/")[2].upper() == "DICOMDIR":
                        self._read_dicomdir(source, entry, run)
                        run.files_done += 1
                        run.bytes_done += entry.size
                        continue
                    inflight.append((entry, pool.submit(
                        ingest_file, source, entry, self.store, staging,
                        self.options.read_retries, limits, deadline=deadline)))
                    settle(window)
                settle(0)
            except BaseException:
                # Let running workers finish, keep what they stored, then re-raise.
                for _entry, fut in inflight:
                    with contextlib.suppress(MediumRemovedError):
                        self._take(fut.result(), run)
                inflight.clear()
                raise

    @staticmethod
    def _with_members(entries: Iterable[Entry], run: _Run,
                      settle: Callable[[int], None]) -> Iterator[Entry]:
        """The medium's entries, and the members of each archive soon after it is found to be one
        (by its first bytes, when its file is read)."""
        for entry in entries:
            yield entry
            while run.queued:
                yield run.queued.popleft()
        while True:
            settle(0)  # the last files read may be archives too
            if not run.queued:
                return
            while run.queued:
                yield run.queued.popleft()

    @staticmethod
    def _expand(source: ArchiveSource, entry: Entry, run: _Run) -> None:
        """Queue the members of the archive ``entry``; list what is not read, and why."""
        listing = source.expand(entry)
        run.archives.append(listing.record)
        run.rejected.extend(listing.refused)
        run.queued.extend(listing.members)
        run.extra_files += len(listing.members)
        run.extra_bytes += sum(max(m.size, 0) for m in listing.members)
        if listing.record["problem"]:
            run.warnings.append(f"Archive {listing.record['path']}: {listing.record['problem']}")

    @staticmethod
    def _non_file(entry: Entry, run: _Run, limits: ScanLimits) -> None:
        if entry.kind is EntryKind.SYMLINK:
            run.quirks["symlinks"] += 1
            run.ignored.append({"path": display_path(entry.path),
                                "reason": "symbolic link, not followed (it could leave the "
                                          "medium)"})
        elif entry.kind is EntryKind.TOO_DEEP:
            # Rejected, not ignored: what is in it may well be DICOM that was not imported.
            run.too_deep += 1
            run.rejected.append({"path": display_path(entry.path),
                                 "reason": limits.too_deep_reason()})
        elif entry.size < 0:
            run.rejected.append({"path": display_path(entry.path),
                                 "reason": "unreadable directory entry"})
        else:
            run.ignored.append({"path": display_path(entry.path),
                                "reason": "special file (device, pipe)"})

    def _read_dicomdir(self, source: Source, entry: Entry, run: _Run) -> None:
        if entry.size > MAX_DICOMDIR_BYTES:
            run.warnings.append(f"{display_path(entry.path)} is implausibly large "
                                f"({entry.size} bytes); the whole medium was searched instead")
            return
        try:
            with source.open(entry.path) as fh:
                data = fh.read(MAX_DICOMDIR_BYTES + 1)
        except (SourceReadError, OSError) as exc:
            if not source.is_present():
                raise MediumRemovedError("The medium was removed during the import.") from None
            run.warnings.append(f"{display_path(entry.path)} cannot be read ({exc}); the whole "
                                "medium was searched instead")
            return
        run.dicomdirs.append(read_dicomdir(data, display_path(entry.path),
                                           max_records=self.options.limits.max_files))

    def _take(self, outcome: Outcome, run: _Run) -> None:
        if isinstance(outcome, Rejected):
            run.rejected.append({"path": display_path(outcome.path), "reason": outcome.reason})
            run.too_large += outcome.limit == MAX_FILE_BYTES
            if outcome.limit == MAX_SECONDS and run.stopped is None:
                # The deadline passed while this file was checked: the scan stops here, even
                # when it was the last file (the loop only looks between files).
                run.stopped = MAX_SECONDS
                run.error = self.options.limits.stop_message(MAX_SECONDS)
            return
        if isinstance(outcome, Ignored) and outcome.archive:
            # Settled after the import stopped (cancelled, medium pulled): not "not DICOM".
            run.rejected.append({"path": display_path(outcome.path),
                                 "reason": "zip archive: not opened, the import stopped first"})
            return
        if isinstance(outcome, Ignored):
            run.ignored.append({"path": display_path(outcome.path), "reason": outcome.reason})
            return
        h, path = outcome.header, display_path(outcome.path)
        cs = h.specific_character_set
        key = (h.patient_name_raw, repr(cs))
        name = run.names.get(key)
        if name is None:
            name = run.names[key] = decode_person_name(h.patient_name_raw, cs)
            if name.warning and name.warning not in run.warnings:
                run.warnings.append(name.warning)
        run.quirks["charset_mislabelled"] += name.warning is not None
        run.quirks["lowercase_names"] += has_lowercase(path)
        run.institutions[h.institution_name] += 1
        run.quirks["no_preamble"] += not h.has_preamble
        run.patients.setdefault((h.patient_id, name.stored), {
            "patient_id": h.patient_id, "name": name.stored, "name_display": name.display,
            "birth_date": h.patient_birth_date, "sex": h.patient_sex})
        run.study_info.setdefault(h.study_uid, {
            "patient_id": h.patient_id, "patient_name": name.stored,
            "patient_name_display": name.display, "study_date": h.study_date,
            "study_description": h.study_description})
        intern = sys.intern  # study/series-level strings repeat for every image of a series
        run.rows.append(InstanceRow(
            sop_instance_uid=h.sop_instance_uid, sop_class_uid=intern(h.sop_class_uid),
            study_uid=intern(h.study_uid), series_uid=intern(h.series_uid),
            sha256=outcome.blob.sha256, size=outcome.blob.size, source_path=path,
            transfer_syntax=intern(h.transfer_syntax), modality=intern(h.modality),
            series_number=h.series_number, series_description=intern(h.series_description),
            instance_number=h.instance_number, verified=outcome.pixel_problem is None,
            problem=outcome.pixel_problem))
        run.paths.add(path)
        run.pending.append(outcome.blob)
        run.pending_bytes += outcome.blob.size

    def _flush(self, run: _Run, committer: ThreadPoolExecutor) -> None:
        """Hand the pending blobs to the committer thread."""
        if run.pending:
            run.batches.append(committer.submit(self._commit_and_verify, run.pending))
        run.pending = []
        run.pending_bytes = 0

    def _commit_and_verify(self, batch: list[PendingBlob]) -> set[str]:
        """Make a batch durable, then re-hash each stored blob; return the hashes that differ.

        The re-read comes from the page cache: it proves the store holds exactly the bytes
        hashed while reading the medium (our write path), not that the disk platter does.
        """
        self.store.commit(batch)
        bad: set[str] = set()
        for sha in {b.sha256 for b in batch}:
            h = hashlib.sha256()
            try:
                with self.store.open(sha) as fh:
                    while chunk := fh.read(_VERIFY_CHUNK):
                        h.update(chunk)
            except OSError:
                bad.add(sha)
                continue
            if h.hexdigest() != sha:
                bad.add(sha)
        return bad

    # --- report ----------------------------------------------------------------------------

    def _record(self, source: Source, case_id: str, job_id: str, run: _Run,
                bad_hashes: set[str]) -> dict[str, Any]:
        rows: list[InstanceRow] = []
        problems: list[dict[str, str]] = []
        for row in run.rows:
            if row.sha256 in bad_hashes:
                row = replace(row, verified=False,
                              problem="stored copy does not match the bytes read from the medium")
            if row.problem:
                problems.append({"path": row.source_path, "problem": row.problem})
            rows.append(row)
        # Sorted, not in read order: that follows the disc's layout, which says nothing.
        patients = dict(sorted(run.patients.items()))
        study_info = run.study_info
        dicomdir = self._reconcile(run, run.paths)
        complete = run.error is None
        merge = None
        if rows:
            merge = self.catalog.merge(
                case_id, rows, patients=list(patients.values()), study_info=study_info,
                source={"description": source.description, "label": source.label,
                        "job_id": job_id, "hospital": _hospital(run.institutions)},
                job_id=job_id, complete=complete and not problems)
            run.warnings.extend(merge.warnings or [])
            problems.extend(self._series_counts(case_id, rows))
        verified = sum(1 for r in rows if r.verified)
        in_archive = Counter(r.source_path.rpartition(SEPARATOR)[0] for r in rows
                             if SEPARATOR in r.source_path)
        for archive in run.archives:
            archive["imported"] = in_archive[archive["path"]]
        contents = classify(i["path"] for i in run.ignored)
        report: dict[str, Any] = {
            "case_id": case_id if rows else None,
            "job_id": job_id,
            "source": source.description,
            "label": source.label,
            "complete": complete,
            "error": run.error,
            "instances": {
                "found": len(rows),
                "imported": merge.imported if merge else 0,
                "duplicates": merge.duplicates if merge else 0,
                "verified": verified,
            },
            "bytes": sum(r.size for r in rows),
            "patients": list(patients.values()),
            "studies": self._studies(rows, study_info),
            "rejected": run.rejected,
            "ignored": run.ignored,
            "dicomdir": dicomdir,
            "archives": run.archives,
            "limits": self.options.limits.report(stopped=run.stopped, too_deep=run.too_deep,
                                                 too_large=run.too_large),
            "verification": {
                "rehashed": len({r.sha256 for r in rows}),
                "hash_mismatches": len(bad_hashes),
                "pixel_data_checked": len(rows),
                "problems": problems,
            },
            "warnings": run.warnings,
            # What else is on the medium; and, when it holds no DICOM at all (nothing damaged,
            # nothing cut short), what to tell the coordinator and to ask the hospital for.
            "contents": contents.to_json(),
            "no_dicom": (no_dicom_message(contents)
                         if not rows and not run.rejected and complete else None),
        }
        report["quirks"] = count_quirks(report, filesystem=source.filesystem,
                                        per_instance=run.quirks)
        report["issuer"] = issuer(
            # The medium's own DICOMDIR first (the shallowest), whatever order they were read in.
            run.institutions, [d.fileset_id for d in sorted(
                run.dicomdirs, key=lambda d: (d.path.count("/"), d.path))], source.label,
            [w for p in patients.values()
             for w in (*p["name"].replace("^", " ").replace("=", " ").split(),
                       p["patient_id"], p["birth_date"])])
        self.catalog.record_issuer(report["issuer"], report)
        report_sha = self.store.put_bytes(_json_bytes(report))
        if not rows:
            state = "empty" if complete else "incomplete"
        elif not complete:
            state = "incomplete"
        else:
            state = "complete" if not problems else "verification_failed"
        self.catalog.finish_job(job_id, state, report=report_sha, error=run.error,
                                instances=len(rows), verified=verified)
        return report

    @staticmethod
    def _studies(rows: list[InstanceRow],
                 info: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            s = out.setdefault(r.study_uid, {
                "study_uid": r.study_uid, "patient_id": info[r.study_uid]["patient_id"],
                "study_date": info[r.study_uid]["study_date"],
                "description": info[r.study_uid]["study_description"],
                "modalities": set(), "series": set(), "instances": 0})
            s["modalities"].add(r.modality)
            s["series"].add(r.series_uid)
            s["instances"] += 1
        # Newest first, as study lists go; never in read order (that follows the disc layout).
        ordered = sorted(out.values(), key=lambda s: (s["study_date"], s["study_uid"]),
                         reverse=True)
        return [s | {"modalities": sorted(m for m in s["modalities"] if m),
                     "series": len(s["series"])} for s in ordered]

    def _series_counts(self, case_id: str, rows: list[InstanceRow]) -> list[dict[str, str]]:
        """Every instance read from this medium must be in the case's stored manifests."""
        stored: set[tuple[str, str]] = set()
        for study in self.catalog.studies(case_id):
            if study["study_uid"] in {r.study_uid for r in rows}:
                stored |= {(m.sop_instance_uid, m.sha256) for m in self.catalog.manifest(study)}
        missing = [r for r in rows if (r.sop_instance_uid, r.sha256) not in stored]
        return [{"path": r.source_path, "problem": "not found in the case after saving"}
                for r in missing]

    @staticmethod
    def _reconcile(run: _Run, dicom_paths: set[str]) -> dict[str, Any]:
        """Compare what DICOMDIRs list with the DICOM files actually found.

        File IDs are matched case-insensitively: discs mounted without Rock Ridge show
        lowercase names while DICOMDIRs say uppercase.
        """
        by_lower = {p.lower(): p for p in dicom_paths}
        listed: set[str] = set()
        missing: list[str] = []
        problems: list[str] = []
        records = 0
        for index in run.dicomdirs:
            problems.extend(index.problems)
            for rec in index.records:
                records += 1
                found = by_lower.get(rec.file_id.lower())
                if found is None:
                    missing.append(rec.file_id)
                else:
                    listed.add(found)
        readable = any(i.readable for i in run.dicomdirs)
        unlisted = sorted(dicom_paths - listed) if readable else []
        run.warnings.extend(problems)
        if missing:
            run.warnings.append(f"The DICOMDIR lists {len(missing)} file(s) that are not on the "
                                "medium or could not be read")
        if unlisted:
            run.warnings.append(f"{len(unlisted)} DICOM file(s) on the medium are not in its "
                                "DICOMDIR; they were imported too")
        return {"present": bool(run.dicomdirs), "readable": readable, "records": records,
                "missing": missing, "unlisted": unlisted, "problems": problems}


def disc_order(entries: list[Entry]) -> list[Entry]:
    """``entries`` in ascending :attr:`Entry.location`, those without one after, as listed.

    A CD seeks in about 100 ms: read in directory order, a 2,000-file disc can spend minutes
    moving its head; read in extent order it streams. The sort is stable, so a medium that
    tells no locations (a folder on tmpfs, a network share) is read exactly as listed.
    """
    if not any(e.location is not None for e in entries):
        return entries
    return sorted(entries, key=lambda e: (e.location is None, e.location or 0))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _hospital(institutions: Counter[str]) -> str | None:
    """The Institution Name most instances of a medium give (the package's chain of custody)."""
    named = [n for n, _ in institutions.most_common() if n.strip()]
    return " ".join(named[0].split()) if named else None
