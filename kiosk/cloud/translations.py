"""Where translated (and original) reports come from: one interface, two sources.

* :class:`DicomWebSource`: Encapsulated PDF instances in the case's studies on the office's
  DICOMweb server that the kiosk did not create, recognised by the agreed markers
  (:mod:`kiosk.dicom.encapsulated`; README "Reports in DICOMweb"). Found with QIDO-RS, their header
  read with WADO-RS metadata, the PDF fetched with WADO-RS only when the markers say "report".
* :class:`InboxSource`: PDF files in the office inbox folder, named ``<CASE>.<lang>.pdf`` or
  ``<STUDY-UID>.<lang>.pdf``.

A source only *offers* reports; :class:`kiosk.reports.merger.ReportMerger` merges them
(idempotently,
by ``origin``). Offers the kiosk decided not to take are returned as ``skipped`` so the sync
engine remembers them and does not fetch them again.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiosk.cloud.protocol import Cloud
from kiosk.dicom.encapsulated import ENCAPSULATED_PDF, NotAReport, extract_pdf, read_markers
from kiosk.reports.merger import IncomingReport, check_pdf


@dataclass(frozen=True)
class CaseScope:
    """What a source needs to know about one case."""

    case_id: str
    study_uids: tuple[str, ...]
    #: Whether a SOP Instance UID is one the kiosk imported or created (never offered back).
    owns: Callable[[str], bool]
    #: Seconds since the epoch of the case's last change (old cases are not searched remotely).
    updated: float


@dataclass
class Poll:
    """What one look at a source found."""

    offers: list[IncomingReport] = field(default_factory=list)
    #: origin -> why it was not taken (remembered, not looked at again).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Things that matched no case (inbox file names), shown to the coordinator.
    unmatched: list[str] = field(default_factory=list)


class TranslationSource(Protocol):
    """A place reports arrive from."""

    #: The report ``source`` value: "inbox" or "dicomweb".
    name: str

    def poll(self, cases: Sequence[CaseScope], seen: Container[str]) -> Poll:
        """Offer the reports of ``cases`` whose origin is not in ``seen``.

        Raises
        ------
        CloudError
            (DICOMweb) the server cannot be asked now; nothing is lost, ask again later.
        """
        ...


class DicomWebSource:
    """Reports placed in the case's studies on the office's DICOMweb server.

    Parameters
    ----------
    cloud : Cloud
        The server.
    max_age_days : int
        Cases unchanged for longer are not searched (each search is one request per study).
    """

    name = "dicomweb"

    def __init__(self, cloud: Cloud, max_age_days: int = 30) -> None:
        self.cloud = cloud
        self.max_age = max_age_days * 86400.0

    def poll(self, cases: Sequence[CaseScope], seen: Container[str]) -> Poll:
        """QIDO-RS per study, WADO-RS metadata per new candidate, WADO-RS for real reports."""
        poll = Poll()
        cutoff = time.time() - self.max_age
        for case in cases:
            if case.updated < cutoff:
                continue
            for study_uid in case.study_uids:
                for remote in self.cloud.find_instances(study_uid, ENCAPSULATED_PDF):
                    origin = f"dicomweb:{remote.sop_instance_uid}"
                    if origin in seen or case.owns(remote.sop_instance_uid):
                        continue
                    try:
                        markers = read_markers(self.cloud.metadata(remote))
                        _header, pdf = extract_pdf(self.cloud.retrieve(remote))
                    except NotAReport as exc:
                        poll.skipped[origin] = str(exc)
                        continue
                    problem = check_pdf(pdf)
                    if problem:
                        poll.skipped[origin] = problem
                        continue
                    poll.offers.append(IncomingReport(
                        origin=origin, case_id=case.case_id, study_uid=study_uid, pdf=pdf,
                        language=markers.language, role=markers.role,
                        certified=markers.certified, source=self.name,
                        translator=markers.translator, title=markers.title or None,
                        detail=f"instance {remote.sop_instance_uid} on the office server"))
        return poll


#: ``<key>.<lang>[.draft].pdf``: key a case id or Study Instance UID; ``draft`` = not certified.
_INBOX_NAME = re.compile(r"^(?P<key>[^.].*?)\.(?P<lang>en|zh)(?P<draft>\.draft)?\.pdf$",
                         re.IGNORECASE)
#: A file younger than this may still be being copied in by the office's sync tool.
SETTLE_SECONDS = 2.0


class InboxSource:
    """PDFs dropped into the office inbox folder.

    ``<CASE>.en.pdf`` is a certified English translation, ``<CASE>.en.draft.pdf`` an
    uncertified one, ``<CASE>.zh.pdf`` the Chinese original. ``<CASE>`` may also be a Study
    Instance UID of the case. Files are left in place (the folder may be synced from the
    office); each is merged once, by its content hash.
    """

    name = "inbox"

    def __init__(self, inbox_dir: Path, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.inbox_dir = inbox_dir
        self.settle_seconds = settle_seconds

    def poll(self, cases: Sequence[CaseScope], seen: Container[str]) -> Poll:
        """Match file names to cases and offer the new, complete PDFs."""
        poll = Poll()
        by_key: dict[str, tuple[CaseScope, str | None]] = {}
        for case in cases:
            by_key[case.case_id.upper()] = (case, None)
            for study_uid in case.study_uids:
                by_key[study_uid.upper()] = (case, study_uid)
        try:
            entries = sorted(self.inbox_dir.iterdir())
        except FileNotFoundError:
            return poll
        now = time.time()
        for path in entries:
            match = _INBOX_NAME.match(path.name)
            if match is None or not path.is_file() or path.is_symlink():
                if not path.name.startswith("."):
                    poll.unmatched.append(path.name)
                continue
            target = by_key.get(match["key"].upper())
            if target is None:
                poll.unmatched.append(path.name)
                continue
            case, target_study = target
            try:
                if now - path.stat().st_mtime < self.settle_seconds:
                    continue  # still arriving; next round
                data = path.read_bytes()
            except OSError:
                continue
            origin = f"inbox:{case.case_id}:{hashlib.sha256(data).hexdigest()}"
            if origin in seen:
                continue
            problem = check_pdf(data)
            if problem:
                poll.skipped[origin] = f"{path.name}: {problem}"
                continue
            language = match["lang"].lower()
            translation = language != "zh"
            poll.offers.append(IncomingReport(
                origin=origin, case_id=case.case_id, study_uid=target_study, pdf=data,
                language=language, role="translation" if translation else "original",
                certified=translation and not match["draft"], source=self.name,
                detail=f"inbox file {path.name}"))
        return poll
