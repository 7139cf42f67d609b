"""Purging cases, by the coordinator or by the retention timer: every purge audited.

:func:`kiosk.retention.purge.purge_case` deletes; :func:`kiosk.retention.policy.review_cases`
decides what is due. This puts them together with the audit trail and the log files, for the
facade (:class:`kiosk.service.KioskService`) to call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiosk.errors import UsageError
from kiosk.retention.policy import CaseRetention, due_cases, review_cases
from kiosk.retention.purge import PurgeResult, purge_case
from kiosk.security.audit import AuditLog
from kiosk.security.logfile import prune_logs
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog
from kiosk.store.locations import Locations

log = logging.getLogger(__name__)


class Purger:
    """Purges cases and runs retention for one kiosk.

    Parameters
    ----------
    catalog, store, locations, audit
        The kiosk's data and its audit trail.
    days : int
        ``retention.days`` (0: automatic purging off).
    clock : callable
        Seconds since the epoch (the facade's, which tests replace).
    """

    def __init__(self, catalog: Catalog, store: BlobStore, locations: Locations,
                 audit: AuditLog, days: int, clock: Callable[[], float]) -> None:
        self.catalog, self.store, self.locations, self.audit = catalog, store, locations, audit
        self.days, self.clock = days, clock

    def purge(self, case_id: str, *, force: bool = False,
              reason: str = "coordinator") -> PurgeResult:
        """Delete a case, every blob only it used and its leftover copies; audited.

        ``reason`` goes into the audit entry: ``coordinator`` (Admin, the CLI) or
        ``retention``.

        Raises
        ------
        UsageError
            No such case, an import into it is running, or not uploaded yet and ``force`` is
            false (the caller confirms; the desk asks for the coordinator PIN).
        """
        result = purge_case(self.catalog, self.store, case_id, force=force,
                            locations=self.locations)
        self.audit.append("purge", case_id=case_id, reason=reason,
                          forced=force and not result.uploaded, uploaded=result.uploaded,
                          studies=result.studies, blobs_deleted=result.blobs_deleted,
                          temps_removed=result.temps_removed,
                          inbox_removed=result.inbox_removed)
        return result

    def review(self) -> list[CaseRetention]:
        """Every case's retention verdict now (``retention.days``; nothing is changed)."""
        return review_cases(self.catalog, self.store, self.days, self.clock())

    def run(self, *, dry_run: bool = False) -> list[CaseRetention]:
        """Purge every case due under ``retention.days``; return those purged (or due).

        Only cases delivered **and** uploaded qualify, so nothing here ever needs ``force``:
        a case that is not uploaded (re-checked inside the purge) is skipped, not forced.
        Each purge is audited with ``reason="retention"``; rotated log files older than
        ``retention.days`` are deleted too. Safe to run from a timer beside the desk app:
        purging takes the database lock.
        """
        due = due_cases(self.catalog, self.days, self.clock())
        if dry_run:
            return due
        purged = []
        for verdict in due:
            try:
                self.purge(verdict.case_id, reason="retention")
            except UsageError as exc:  # uploaded state changed, purged meanwhile, import running
                log.info("retention: %s kept: %s", verdict.case_id, exc.text)
                continue
            purged.append(verdict)
        # Rotated log files older than the retention period go with the cases of that time.
        prune_logs(self.locations.logs_dir, self.days, self.clock())
        return purged
