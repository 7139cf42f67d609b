"""Merge a report (original or translation) into a case: as a PDF and as a new DICOM instance.

A merged report is one document in the catalog's ``reports`` table. The contract other parts
(patient USB packaging, the UI) rely on; :meth:`kiosk.store.catalog.Catalog.reports` returns these:

=================  ==========================================================================
``report_id``      unique id (``R-`` + 12 hex digits)
``case_id``        the case
``study_uid``      the study the report belongs to (None when the case has no study yet)
``language``       ``"zh"`` or ``"en"``
``role``           ``"original"`` or ``"translation"``
``pdf_sha256``     blob of the PDF
``dicom_sha256``   blob of the Encapsulated PDF instance the kiosk created, or None
``sop_instance_uid``, ``series_uid``  UIDs of that instance (None without one)
``source``         ``"medium"``, ``"inbox"``, ``"dicomweb"`` or ``"coordinator"``
``received``       ISO 8601 UTC time of the merge
``certified``      bool: a certified translation
``translator``     str or None
``title``          document title
``pdf_name``       suggested file name (ASCII, unique within the case)
=================  ==========================================================================

Extra keys: ``origin`` (the idempotency key: merging the same thing twice returns the first
merge), ``provenance`` (where exactly it came from), ``upload`` (whether the outbox sends the
instance to the cloud: not for reports that came from the cloud, which already holds them).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from kiosk.dicom.encapsulated import LANGUAGE_NAMES, build_report_instance
from kiosk.errors import UsageError
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog, now_iso

SOURCES = ("medium", "inbox", "dicomweb", "coordinator")
ROLES = ("original", "translation")
#: Larger "reports" are almost certainly something else (a scanned film, a video).
MAX_PDF_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class IncomingReport:
    """A report to merge, from any source.

    Attributes
    ----------
    origin : str
        Idempotency key: the same origin is merged once (``inbox:<case>:<sha256>``,
        ``dicomweb:<SOP Instance UID>``, ...).
    study_uid : str or None
        The study it belongs to; None = the case's most recent study.
    detail : str
        Human-readable provenance: the file name, the remote instance UID.
    """

    origin: str
    case_id: str
    study_uid: str | None
    pdf: bytes
    language: str
    role: str
    certified: bool
    source: str
    translator: str | None = None
    title: str | None = None
    detail: str = ""


def check_pdf(data: bytes) -> str | None:
    """Why ``data`` is not an acceptable report PDF, or None when it is."""
    if not data.startswith(b"%PDF-"):
        return "not a PDF (it does not start with %PDF-)"
    if len(data) > MAX_PDF_BYTES:
        return f"larger than {MAX_PDF_BYTES // (1024 * 1024)} MiB"
    if b"%%EOF" not in data[-2048:]:
        # Also what a file still being copied into the inbox looks like: try again later.
        return "incomplete PDF (no %%EOF at its end)"
    return None


def default_title(language: str, role: str, certified: bool) -> str:
    """``Radiology report (English, certified translation)``."""
    kind = "certified translation" if certified else role
    return f"Radiology report ({LANGUAGE_NAMES[language]}, {kind})"


def latest_study(studies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The study a case-level report goes to: the most recent, then the largest."""
    if not studies:
        return None
    return max(studies, key=lambda s: (s.get("study_date") or "", s.get("instances", 0),
                                       s["study_uid"]))


class ReportMerger:
    """Stores reports and builds their Encapsulated PDF instances."""

    def __init__(self, catalog: Catalog, store: BlobStore, kiosk_id: str) -> None:
        self.catalog = catalog
        self.store = store
        self.kiosk_id = kiosk_id

    def merge(self, incoming: IncomingReport) -> tuple[dict[str, Any], bool]:
        """Merge ``incoming`` into its case; return ``(report, created)``.

        Idempotent: an origin already merged, or the same PDF with the same language and role
        in the same study, returns the existing report with ``created`` False.

        Raises
        ------
        UsageError
            Unknown case or study, bad language/role/source, or not a PDF.
        """
        self._check(incoming)
        pdf_sha = hashlib.sha256(incoming.pdf).hexdigest()
        with self.catalog.db.transaction():
            existing = self.catalog.find_report(origin=incoming.origin)
            if existing:
                return existing, False
            study = self._study(incoming)
            study_uid = study["study_uid"] if study else None
            for report in self.catalog.reports(incoming.case_id):
                if (report["pdf_sha256"], report["study_uid"], report["language"],
                        report["role"]) == (pdf_sha, study_uid, incoming.language,
                                            incoming.role):
                    return report, False
            report = self._build(incoming, study, pdf_sha)
            self.catalog.add_report(report)
        return report, True

    def _check(self, incoming: IncomingReport) -> None:
        if incoming.language not in LANGUAGE_NAMES:
            raise UsageError(f"Report language must be one of {', '.join(LANGUAGE_NAMES)}, "
                             f"not {incoming.language!r}.")
        if incoming.role not in ROLES:
            raise UsageError(f"Report role must be 'original' or 'translation', not "
                             f"{incoming.role!r}.")
        if incoming.source not in SOURCES:
            raise UsageError(f"Unknown report source {incoming.source!r}.")
        problem = check_pdf(incoming.pdf)
        if problem:
            raise UsageError(f"The report {incoming.detail or ''} is {problem}.".replace(
                "  ", " "))
        if self.catalog.case(incoming.case_id) is None:
            raise UsageError(f"There is no case {incoming.case_id}. `kiosk cases` lists them.")

    def _study(self, incoming: IncomingReport) -> dict[str, Any] | None:
        studies = self.catalog.studies(incoming.case_id)
        if incoming.study_uid is None:
            return latest_study(studies)
        for study in studies:
            if study["study_uid"] == incoming.study_uid:
                return study
        raise UsageError(f"Case {incoming.case_id} has no study {incoming.study_uid}.")

    def _first_header(self, study: dict[str, Any]) -> Dataset:
        """Header of the study's first imported instance, read from the store."""
        first = self.catalog.manifest(study)[0]
        with self.store.open(first.sha256) as fh:
            return dcmread(fh, stop_before_pixels=True)

    def _build(self, incoming: IncomingReport, study: dict[str, Any] | None,
               pdf_sha: str) -> dict[str, Any]:
        title = incoming.title or default_title(incoming.language, incoming.role,
                                                incoming.certified)
        self.store.put_bytes(incoming.pdf)
        received = now_iso()
        provenance = {"source": incoming.source, "detail": incoming.detail,
                      "kiosk": self.kiosk_id, "time": received, "pdf_sha256": pdf_sha}
        dicom_sha = sop_uid = series_uid = None
        if study is not None:
            in_study = [r for r in self.catalog.reports(incoming.case_id)
                        if r["study_uid"] == study["study_uid"]]
            note = (f"Report merged by MedPass Kiosk {self.kiosk_id} at {received} from "
                    f"{incoming.source}" + (f" ({incoming.detail})" if incoming.detail else "")
                    + f"; PDF SHA-256 {pdf_sha}")
            instance = build_report_instance(
                self._first_header(study), patient_name=study.get("patient_name", ""),
                pdf=incoming.pdf, title=title, language=incoming.language, role=incoming.role,
                certified=incoming.certified, translator=incoming.translator,
                series_number=901 + len(in_study), provenance=note, station=self.kiosk_id)
            dicom_sha = self.store.put_bytes(instance.data)
            sop_uid, series_uid = instance.sop_instance_uid, instance.series_uid
        return {
            "report_id": f"R-{secrets.token_hex(6)}",
            "case_id": incoming.case_id,
            "study_uid": study["study_uid"] if study else None,
            "language": incoming.language,
            "role": incoming.role,
            "pdf_sha256": pdf_sha,
            "dicom_sha256": dicom_sha,
            "sop_instance_uid": sop_uid,
            "series_uid": series_uid,
            "source": incoming.source,
            "received": received,
            "merged_ts": time.time(),  # orders reports merged within the same second
            "certified": incoming.certified,
            "translator": incoming.translator,
            "title": title,
            "pdf_name": self._pdf_name(incoming, study),
            "origin": incoming.origin,
            "provenance": provenance,
            "upload": incoming.source != "dicomweb",
        }

    def _pdf_name(self, incoming: IncomingReport, study: dict[str, Any] | None) -> str:
        date = (study or {}).get("study_date") or "report"
        kind = "certified_translation" if incoming.certified else incoming.role
        stem = "".join(c if c.isascii() and c.isalnum() else "_"
                       for c in f"{date}_{incoming.language}_{kind}")
        taken = {r["pdf_name"] for r in self.catalog.reports(incoming.case_id)}
        name, n = f"{stem}.pdf", 2
        while name in taken:
            name, n = f"{stem}_{n}.pdf", n + 1
        return name
