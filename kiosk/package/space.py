"""Will a case fit on the patient's stick: the estimate the desk shows before writing.

The export checks the exact figure again once the package is planned
(:func:`kiosk.package.export.required_bytes`); this is the quick look when the stick is ready.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kiosk.store.blobstore import BlobStore

#: Room for DICOMDIR, MANIFEST.JSON, README.TXT and the zip's own records.
MARGIN = 2 << 20


def target_check(studies: list[dict[str, Any]], reports: list[dict[str, Any]],
                 store: BlobStore, target: str | Path) -> dict[str, Any]:
    """The package's approximate size, the stick's free space, and what is already on it.

    Returns ``needed`` (images + report PDFs and instances + margin), ``free``, ``others``
    (files and folders already on the stick, never touched), ``enough`` and ``instances``.

    Raises
    ------
    OSError
        The target cannot be read.
    """
    images = sum(s["bytes"] for s in studies)
    report_bytes = sum(store.path_for(r[key]).stat().st_size for r in reports
                       for key in ("pdf_sha256", "dicom_sha256") if r.get(key))
    needed = images + report_bytes + MARGIN
    free = shutil.disk_usage(target).free
    others = sum(1 for p in Path(target).iterdir() if not p.name.startswith("."))
    return {"needed": needed, "free": free, "others": others, "enough": free >= needed,
            "instances": sum(s["instances"] for s in studies)}
