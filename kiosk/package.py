"""The patient package: an IHE PDI-shaped file-set planned from a case.

Layout (DESIGN.md §3)::

    DICOMDIR                       records from pydicom's directory record builders
    PT000000/ST000000/SE000000/IM000000 ...   the original instances, bit-exact, no extension
    REPORTS/ORIGINAL_ZH.PDF        reports as PDFs (their Encapsulated PDF instances are in the
    REPORTS/TRANSLATION_EN.PDF     DICOM tree and the DICOMDIR too)
    MANIFEST.JSON                  per-file SHA-256 and size, case, source media, provenance

The plan lists every file with its size and hash before anything is written, so the writer
can check free space first and the read-back can compare against it.

The DICOMDIR and the File IDs come from :mod:`kiosk.dicomdir_writer` (one pass over the
headers; pydicom's FileSet is quadratic in the number of instances and re-encodes them), and
the original bytes go under those IDs. Values a DICOMDIR record needs as Type 1 but an instance
left empty (a Study ID, say) are filled in the header copy only (see the writer), never in
the original.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from kiosk import __version__
from kiosk.blobstore import BlobStore
from kiosk.catalog import Catalog, InstanceRow, now_iso
from kiosk.dicomdir_writer import layout, write_dicomdir
from kiosk.errors import UsageError


@dataclass(frozen=True)
class PackageFile:
    """One file of the package."""

    arcname: str  # POSIX path inside the package
    size: int
    sha256: str
    kind: str  # dicom | dicomdir | report | manifest
    blob: str | None = None  # content-store hash holding the bytes
    data: bytes | None = None  # or the bytes themselves (small generated files)
    prefix: bytes = b""  # Part 10 header added in front of a raw dataset (see _wrap_raw)
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self, store: BlobStore) -> BinaryIO:
        """A stream of this file's bytes."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.blob is not None
        fh = store.open(self.blob)
        if not self.prefix:
            return fh
        return cast(BinaryIO, _Concat(self.prefix, fh))


@dataclass(frozen=True)
class PackagePlan:
    """Everything that will be written, with sizes and hashes."""

    case_id: str
    files: list[PackageFile]
    manifest: dict[str, Any]

    @property
    def total_bytes(self) -> int:
        """Sum of file sizes."""
        return sum(f.size for f in self.files)


class _Concat(io.RawIOBase):
    """A read-only stream of ``prefix`` then the rest of ``fh``."""

    def __init__(self, prefix: bytes, fh: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._fh.readinto(buffer)  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self._fh.close()
        super().close()


def _header(store: BlobStore, row: InstanceRow) -> Dataset:
    with store.open(row.sha256) as fh:
        return dcmread(fh, stop_before_pixels=True, force=True, defer_size="64 KB")


def _wrap_raw(ds: Dataset, row: InstanceRow) -> bytes:
    """A preamble and File Meta group for a dataset that has none (old raw files).

    A DICOMDIR may only reference Part 10 files, so the dataset bytes are kept unchanged and
    only this header is put in front of them; the manifest records that it was added.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(row.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(row.sop_instance_uid)
    meta.TransferSyntaxUID = UID(row.transfer_syntax or "1.2.840.10008.1.2")
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    ds.file_meta = meta
    return buf.getvalue()


def plan_package(catalog: Catalog, store: BlobStore, case_id: str, *,
                 kiosk_id: str, encrypted: bool) -> PackagePlan:
    """Plan the package of ``case_id``.

    Raises
    ------
    UsageError
        No such case, or the case has no images.
    """
    case = catalog.case(case_id)
    if case is None:
        raise UsageError(f"There is no case {case_id}. `kiosk cases` lists them.")
    studies = catalog.studies(case_id)
    rows = [r for s in studies for r in catalog.manifest(s)]
    if not rows:
        raise UsageError(f"Case {case_id} has no images to export.")
    reports = catalog.reports(case_id)
    uids_seen: set[str] = set()

    prefixes: dict[str, bytes] = {}
    headers: list[Dataset] = []
    uids: list[str] = []
    for row in rows:
        if row.sop_instance_uid in uids_seen:
            continue  # a second version of the same UID: see below
        uids_seen.add(row.sop_instance_uid)
        ds = _header(store, row)
        if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
            prefixes[row.sop_instance_uid] = _wrap_raw(ds, row)
        headers.append(ds)
        uids.append(row.sop_instance_uid)
    report_rows = {r["sop_instance_uid"]: r for r in reports if r.get("dicom_sha256")}
    for rep in report_rows.values():
        with store.open(rep["dicom_sha256"]) as fh:
            headers.append(dcmread(fh, force=True))
        uids.append(rep["sop_instance_uid"])
    try:
        ids, tree = layout(headers)
    except ValueError as exc:
        raise UsageError(f"Case {case_id} cannot be indexed for a DICOMDIR: {exc}") from None
    file_ids = dict(zip(uids, ids, strict=True))
    dicomdir = write_dicomdir(tree)

    files: list[PackageFile] = [PackageFile("DICOMDIR", len(dicomdir), _sha(dicomdir),
                                            "dicomdir", data=dicomdir)]
    placed: set[str] = set()
    for row in rows:
        prefix = prefixes.get(row.sop_instance_uid, b"")
        sha = row.sha256 if not prefix else _sha_stream(prefix, store, row.sha256)
        extra: dict[str, Any] = {
            "sop_instance_uid": row.sop_instance_uid, "study_uid": row.study_uid,
            "source_path": row.source_path, "original_sha256": row.sha256}
        if prefix:
            extra["part10_header_added"] = True
        if row.sop_instance_uid in placed:
            # A DICOMDIR cannot list two instances with one UID: keep the other version
            # beside the file-set, unlisted, and say why in the manifest.
            arcname = f"EXTRA/IM{len(placed):06d}"
            extra["not_in_dicomdir"] = "another image on the disc has the same SOP Instance UID"
        else:
            arcname = file_ids[row.sop_instance_uid]
        placed.add(row.sop_instance_uid)
        files.append(PackageFile(arcname, row.size + len(prefix), sha, "dicom",
                                 blob=row.sha256, prefix=prefix, extra=extra))
    for rep in report_rows.values():
        blob = rep["dicom_sha256"]
        files.append(PackageFile(file_ids[rep["sop_instance_uid"]], _blob_size(store, blob),
                                 blob, "dicom", blob=blob,
                                 extra={"sop_instance_uid": rep["sop_instance_uid"],
                                        "report_id": rep["report_id"]}))
    used: set[str] = set()
    report_entries = []
    for rep in reports:
        name = _report_name(rep, used)
        size = _blob_size(store, rep["pdf_sha256"])
        files.append(PackageFile(name, size, rep["pdf_sha256"], "report",
                                 blob=rep["pdf_sha256"]))
        report_entries.append({
            "file": name, "sha256": rep["pdf_sha256"],
            "dicom_file": file_ids.get(rep.get("sop_instance_uid", "")),
            **{k: rep.get(k) for k in ("language", "role", "source", "received", "certified",
                                       "translator", "title", "study_uid")}})

    manifest = {
        "format": "medpass-kiosk-package/1",
        "kiosk_version": __version__,
        "kiosk_id": kiosk_id,
        "created": now_iso(),
        "case_id": case_id,
        "encrypted": encrypted,
        "patients": case.get("patients", []),
        "studies": [{k: s.get(k) for k in ("study_uid", "study_date", "study_description",
                                           "modalities", "instances", "patient_id")}
                    for s in studies],
        "source_media": case.get("sources", []),
        "reports": report_entries,
        "files": [{"path": f.arcname, "size": f.size, "sha256": f.sha256, "kind": f.kind,
                   **f.extra} for f in files],
    }
    data = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    files.append(PackageFile("MANIFEST.JSON", len(data), _sha(data), "manifest", data=data))
    return PackagePlan(case_id, files, manifest)


def _report_name(rep: dict[str, Any], used: set[str]) -> str:
    role = str(rep.get("role", "report")).upper()
    base = f"REPORTS/{role}_{str(rep.get('language', 'xx')).upper()}"
    name, n = f"{base}.PDF", 2
    while name in used:
        name, n = f"{base}_{n}.PDF", n + 1
    used.add(name)
    return name


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha_stream(prefix: bytes, store: BlobStore, blob: str) -> str:
    h = hashlib.sha256(prefix)
    with store.open(blob) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _blob_size(store: BlobStore, blob: str) -> int:
    return store.path_for(blob).stat().st_size


def iter_chunks(stream: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    """Read ``stream`` in chunks until EOF."""
    while chunk := stream.read(size):
        yield chunk
