"""The service facade: the one object the CLI and the UI talk to.

It hides the store, the database and the importer behind intent-level calls and hands progress
back through callbacks (the UI turns them into messages from its worker threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.audit import AuditLog
from kiosk.blobstore import BlobStore
from kiosk.catalog import Catalog, now_iso
from kiosk.config import Config
from kiosk.durable import remove_stale_temps
from kiosk.errors import UsageError
from kiosk.importer import Importer, ProgressCallback
from kiosk.locations import Locations
from kiosk.sources import Source, open_source

if TYPE_CHECKING:
    from kiosk.export import ExportProgress


class KioskService:
    """Everything the kiosk can do, as calls the UI and the CLI share."""

    def __init__(self, config: Config, locations: Locations, catalog: Catalog,
                 store: BlobStore, audit: AuditLog, importer: Importer) -> None:
        self.config = config
        self.locations = locations
        self.catalog = catalog
        self.store = store
        self.audit = audit
        self.importer = importer

    def recover(self) -> list[str]:
        """After a crash: mark dead jobs interrupted and drop their staging folders."""
        stale = self.catalog.mark_interrupted()
        self.store.clean_tmp(keep=self.catalog.running_job_ids())
        remove_stale_temps(self.locations.data_dir)  # the database's own atomic-write temps
        return stale

    def import_path(self, spec: str | Path, *, case_id: str | None = None,
                    on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> dict[str, Any]:
        """Import a directory, ISO image or block device; return the import report.

        Raises
        ------
        SourceError
            ``spec`` is not a readable medium.
        """
        source = open_source(spec)
        try:
            return self.import_source(source, case_id=case_id, on_progress=on_progress,
                                      cancel=cancel)
        finally:
            source.close()

    def import_source(self, source: Source, *, case_id: str | None = None,
                      on_progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None) -> dict[str, Any]:
        """Import an already opened :class:`~kiosk.sources.Source`."""
        if case_id is not None and not case_id.strip():
            raise UsageError("The case id must not be empty.")
        report = self.importer.run(source, case_id=case_id, on_progress=on_progress,
                                   cancel=cancel)
        self.audit.append("import", job_id=report["job_id"], case_id=report["case_id"],
                          source_label=source.label, instances=report["instances"],
                          complete=report["complete"])
        return report

    def export_case(self, case_id: str, target: str | Path, *, encrypt: bool = True,
                    split_size: int | None = None,
                    on_progress: Callable[[ExportProgress], None] | None = None,
                    cancel: threading.Event | None = None) -> dict[str, Any]:
        """Write the patient package of ``case_id`` to ``target`` and verify it.

        Returns the export report (DESIGN.md §4); the passphrase is in it and nowhere else.

        Raises
        ------
        UsageError
            No such case or nothing to export.
        ExportError
            The stick is full, read-only, removed, or the read-back failed.
        """
        # Imported here: packaging pulls in the AES and FileSet machinery an import never needs.
        from kiosk.export import export_package, export_summary
        from kiosk.package import plan_package

        target = Path(target)
        plan = plan_package(self.catalog, self.store, case_id, self.locations.tmp_dir,
                            kiosk_id=self.config.kiosk_id, encrypted=encrypt)
        result = export_package(plan, self.store, target, encrypt=encrypt,
                                split_size=split_size, on_progress=on_progress, cancel=cancel)
        self.catalog.record_export(case_id, {
            "time": now_iso(), "encrypted": encrypt, "folder": result.folder.name,
            "files": result.files, "bytes": result.bytes, "verified": True})
        self.audit.append("export", case_id=case_id, encrypted=encrypt,
                          folder=result.folder.name, files=result.files, bytes=result.bytes,
                          manifest_sha256=plan.files[-1].sha256)
        return export_summary(result, case_id, target, link=None)

    def case_summaries(self) -> list[dict[str, Any]]:
        """One summary per case, newest first."""
        out = []
        for case in self.catalog.cases():
            studies = self.catalog.studies(case["case_id"])
            out.append({
                "case_id": case["case_id"],
                "status": case.get("status", "incomplete"),
                "created": case.get("created"),
                "updated": case.get("updated"),
                "patients": case.get("patients", []),
                "studies": len(studies),
                "instances": sum(s["instances"] for s in studies),
                "bytes": sum(s["bytes"] for s in studies),
                "modalities": sorted({m for s in studies for m in s.get("modalities", [])}),
            })
        return out

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
