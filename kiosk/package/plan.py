"""The patient package: an IHE PDI-shaped file-set planned from a case.

Layout (DESIGN.md §3)::

    DICOMDIR                       records from pydicom's directory record builders
    PT000000/ST000000/SE000000/IM000000 ...   the original instances, bit-exact, no extension
    REPORTS/ORIGINAL_ZH.PDF        reports as PDFs (their Encapsulated PDF instances are in the
    REPORTS/TRANSLATION_EN.PDF     DICOM tree and the DICOMDIR too)
    MANIFEST.JSON                  per-file SHA-256 and size, case, source media, provenance
    MANIFEST.JWS                   the kiosk's signature of MANIFEST.JSON (detached JWS, EdDSA)

The plan knows every instance's blob, size and hash from the catalog before anything is
written, so the writer can check free space first and the read-back can compare against it.
Its File IDs and the DICOMDIR come from the instances' headers
(:mod:`kiosk.package.dicomdir_writer`:
one pass; pydicom's FileSet is quadratic in the number of instances and re-encodes them). A
File ID depends only on the instances before it, so :meth:`PackagePlan.files_to_write` reads
each header just before its file is written: reading 2,000 headers overlaps writing the
images instead of delaying the first byte. The DICOMDIR and ``MANIFEST.JSON``, which need
every header, are written last. Values a DICOMDIR record needs as Type 1 but an instance left
empty (a Study ID, say) are filled in the header copy only (see the writer), never in the
original.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from kiosk import __version__
from kiosk.dicom.instance import NotReadable, read_header_dataset
from kiosk.errors import StoreError, UsageError
from kiosk.package.dicomdir_writer import Layout, ScannedInstance, scan_instance, write_dicomdir
from kiosk.store.blobstore import BlobStore
from kiosk.store.catalog import Catalog, InstanceRow, now_iso


@dataclass(frozen=True)
class PackageFile:
    """One file of the package."""

    arcname: str  # POSIX path inside the package
    size: int
    sha256: str
    kind: str  # dicom | dicomdir | report | manifest | signature
    blob: str | None = None  # content-store hash holding the bytes
    data: bytes | None = None  # or the bytes themselves (small generated files)
    prefix: bytes = b""  # Part 10 header added in front of a raw dataset (see _wrap_raw)
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self, store: BlobStore) -> BinaryIO:
        """A stream of this file's bytes.

        Raises
        ------
        StoreError
            The kiosk's copy cannot be opened (not the stick's fault: said apart).
        """
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.blob is not None
        with _store_errors(self.arcname):
            # Unbuffered: the zip writer reads megabytes at a time straight into its blocks.
            fh = cast(BinaryIO, open(store.path_for(self.blob), "rb", buffering=0))  # noqa: SIM115
        if not self.prefix:
            return fh
        return cast(BinaryIO, _Concat(self.prefix, fh))


class Signer(Protocol):
    """Signs the bytes of MANIFEST.JSON, giving MANIFEST.JWS: the links room's ManifestSigner,
    handed in by the service (this room does not import that one)."""

    fingerprint: str

    def sign(self, manifest: bytes) -> bytes:
        """The detached JWS of ``manifest``."""
        ...

#: Bytes of an instance read for its DICOMDIR record: CT/MR headers are a few KB; a longer
#: header is read by pydicom.
_HEAD_BYTES = 64 << 10


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
    """The instance's header as pydicom reads it (a deflated one inflated within bounds).

    Raises
    ------
    StoreError
        The stored copy no longer reads as DICOM (it did when it was imported).
    """
    with store.open(row.sha256) as fh:
        try:
            return read_header_dataset(fh)
        except NotReadable as exc:
            raise StoreError(f"The kiosk's copy of {row.source_path} cannot be read as DICOM "
                             f"({exc}). Its store may be damaged; nothing was left on the "
                             "stick.") from None


def _scan(store: BlobStore, row: InstanceRow) -> ScannedInstance | None:
    """The instance's IMAGE record inputs from its first bytes, or None: pydicom reads it."""
    with open(store.path_for(row.sha256), "rb", buffering=0) as fh:
        head = fh.read(_HEAD_BYTES)
    return scan_instance(head, complete=len(head) < _HEAD_BYTES,
                         load=functools.partial(_header, store, row))


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


#: Upper bounds used before the DICOMDIR and MANIFEST.JSON exist (free space, progress).
_DICOMDIR_PER_INSTANCE = 512  # bytes of records per instance (~250 for a CT slice)
_MANIFEST_PER_FILE = 640  # bytes of JSON per file, besides its source path
_SIGNATURE = 1024  # MANIFEST.JWS: ~400 bytes
_PREFIX_MARGIN = 512  # a Part 10 header added in front of a raw dataset (~330 bytes)
_GENERATED_MARGIN = 64 << 10


class PackagePlan:
    """The package of a case: every file, in the order it is written.

    Sizes and hashes of the instances and reports are known from the start; File IDs, the
    DICOMDIR and MANIFEST.JSON come as :meth:`files_to_write` runs. Until then
    :attr:`total_bytes` is an upper bound.
    """

    def __init__(self, case_id: str, case: dict[str, Any], studies: list[dict[str, Any]],
                 rows: list[InstanceRow], reports: list[dict[str, Any]], store: BlobStore, *,
                 kiosk_id: str, encrypted: bool, signer: Signer | None = None) -> None:
        self.case_id = case_id
        self._case = case
        self._studies = studies
        self._rows = rows
        self._reports = reports
        self._report_dicoms = {r["sop_instance_uid"]: r for r in reports if r.get("dicom_sha256")}
        self._store = store
        self._kiosk_id = kiosk_id
        self._encrypted = encrypted
        self._signer = signer
        #: Files written beside the archive (README.TXT, the opener page), listed in the
        #: manifest by :meth:`files_to_write`: set them before it runs.
        self.beside: dict[str, bytes] = {}
        self._sizes = {rep[key]: _blob_size(store, rep[key]) for rep in reports
                       for key in ("pdf_sha256", "dicom_sha256") if rep.get(key)}
        #: Every file, DICOMDIR first and MANIFEST.JSON last (the manifest's order), once
        #: :meth:`files_to_write` has run.
        self.files: list[PackageFile] = []
        self.manifest: dict[str, Any] = {}

    @property
    def fingerprint(self) -> str | None:
        """The signing key's fingerprint, None when the package is not signed."""
        return self._signer.fingerprint if self._signer is not None else None

    @property
    def count(self) -> int:
        """Number of files in the package."""
        return (len(self._rows) + len(self._report_dicoms) + len(self._reports) + 2
                + (self._signer is not None))

    @property
    def total_bytes(self) -> int:
        """Sum of file sizes: exact once written, an upper bound before."""
        if self.files:
            return sum(f.size for f in self.files)
        instances = sum(r.size + _PREFIX_MARGIN for r in self._rows)
        generated = (len(self._rows) * (_DICOMDIR_PER_INSTANCE + _MANIFEST_PER_FILE)
                     + sum(len(r.source_path.encode()) for r in self._rows)
                     + 2 * _GENERATED_MARGIN + _SIGNATURE)
        return instances + sum(self._sizes.values()) + generated

    def files_to_write(self) -> Iterator[PackageFile]:
        """Every file of the package, in writing order: images, reports, DICOMDIR, MANIFEST.JSON
        and, with a signer, MANIFEST.JWS.

        Each image's header is read as it comes. Run it once.

        Raises
        ------
        UsageError
            The instances cannot be indexed in a DICOMDIR (a record lacks a required value).
        """
        store, tree = self._store, Layout()
        file_ids: dict[str, str] = {}
        instances: list[PackageFile] = []
        for row in self._rows:
            uid = row.sop_instance_uid
            extra: dict[str, Any] = {"sop_instance_uid": uid, "study_uid": row.study_uid,
                                     "source_path": row.source_path,
                                     "original_sha256": row.sha256,
                                     "transfer_syntax": row.transfer_syntax}
            # Several files may hold one SOP Instance UID (the same image re-exported
            # uncompressed, RLE, JPEG-LS...; the import keeps each): every one gets its own File
            # ID and IMAGE record, which names its transfer syntax, so a viewer can pick.
            item: Dataset | ScannedInstance
            prefix = b""
            with _store_errors(row.source_path):
                scanned = _scan(store, row)
                if scanned is not None:
                    item = scanned
                else:
                    item = _header(store, row)
                    if "TransferSyntaxUID" not in getattr(item, "file_meta", {}):
                        prefix = _wrap_raw(item, row)
                arcname = self._add(tree, item)
            sha = row.sha256 if not prefix else _sha_stream(prefix, store, row.sha256)
            if prefix:
                extra["part10_header_added"] = True
            instances.append(PackageFile(arcname, row.size + len(prefix), sha, "dicom",
                                         blob=row.sha256, prefix=prefix, extra=extra))
            yield instances[-1]
        for uid, rep in self._report_dicoms.items():
            blob = rep["dicom_sha256"]
            with _store_errors(f"report {rep['report_id']}"), store.open(blob) as fh:
                file_ids[uid] = self._add(tree, dcmread(fh, force=True))
            instances.append(PackageFile(file_ids[uid], self._sizes[blob], blob, "dicom",
                                         blob=blob, extra={"sop_instance_uid": uid,
                                                           "report_id": rep["report_id"]}))
            yield instances[-1]
        used: set[str] = set()
        pdfs: list[PackageFile] = []
        report_entries = []
        names: dict[int, str] = {}
        for rep in self._reports:
            names[id(rep)] = _report_name(rep, used)
        originals = _originals(self._reports, names)
        for rep in self._reports:
            name = names[id(rep)]
            pdfs.append(PackageFile(name, self._sizes[rep["pdf_sha256"]], rep["pdf_sha256"],
                                    "report", blob=rep["pdf_sha256"]))
            report_entries.append({
                "file": name, "sha256": rep["pdf_sha256"],
                "dicom_file": file_ids.get(rep.get("sop_instance_uid", "")),
                **{k: rep.get(k) for k in ("language", "role", "source", "received",
                                           "certified", "translator", "title", "study_uid")},
                "translates": None})
            if rep.get("role") == "translation":
                # Which original it translates: the one of its study, else the case's only one.
                original = originals.get(rep.get("study_uid")) or originals.get("*")
                report_entries[-1]["translates"] = original
            yield pdfs[-1]
        dicomdir = write_dicomdir(tree.root)
        files = [PackageFile("DICOMDIR", len(dicomdir), _sha(dicomdir), "dicomdir",
                             data=dicomdir), *instances, *pdfs]
        yield files[0]
        by_uid: dict[str, list[str]] = {}
        for f in instances:
            by_uid.setdefault(f.extra["sop_instance_uid"], []).append(f.arcname)
        self.manifest = {
            "format": "medpass-kiosk-package/1",
            "kiosk_version": __version__,
            "kiosk_id": self._kiosk_id,
            "created": now_iso(),
            "case_id": self.case_id,
            "encrypted": self._encrypted,
            "patients": self._case.get("patients", []),
            "studies": [{k: s.get(k) for k in ("study_uid", "study_date", "study_description",
                                               "modalities", "instances", "patient_id")}
                        for s in self._studies],
            "source_media": self._case.get("sources", []),
            "reports": report_entries,
            "files": [{"path": f.arcname, "size": f.size, "sha256": f.sha256, "kind": f.kind,
                       **f.extra, **_same_uid(f, by_uid)} for f in files],
            # Beside the archive on the stick: `kiosk package verify` checks them too.
            "beside": [{"path": name, "size": len(data), "sha256": _sha(data)}
                       for name, data in sorted(self.beside.items())],
        }
        data = json.dumps(self.manifest, ensure_ascii=False, indent=1).encode("utf-8")
        files.append(PackageFile("MANIFEST.JSON", len(data), _sha(data), "manifest", data=data))
        yield files[-1]
        if self._signer is not None:
            jws = self._signer.sign(data)
            files.append(PackageFile("MANIFEST.JWS", len(jws), _sha(jws), "signature", data=jws))
            yield files[-1]
        self.files = files

    def _add(self, tree: Layout, item: Dataset | ScannedInstance) -> str:
        try:
            return tree.add(item)
        except ValueError as exc:
            raise UsageError(f"Case {self.case_id} cannot be indexed for a DICOMDIR: {exc}"
                             ) from None


def _same_uid(file: PackageFile, by_uid: dict[str, list[str]]) -> dict[str, list[str]]:
    """``same_sop_instance_uid``: the other files of the package holding this file's UID."""
    if file.kind != "dicom":
        return {}
    others = sorted(p for p in by_uid.get(file.extra["sop_instance_uid"], ()) if p != file.arcname)
    return {"same_sop_instance_uid": others} if others else {}


def plan_package(catalog: Catalog, store: BlobStore, case_id: str, *,
                 kiosk_id: str, encrypted: bool, signer: Signer | None = None) -> PackagePlan:
    """Plan the package of ``case_id`` (its files come from :meth:`PackagePlan.files_to_write`).

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
    return PackagePlan(case_id, case, studies, rows, catalog.reports(case_id), store,
                       kiosk_id=kiosk_id, encrypted=encrypted, signer=signer)


@contextlib.contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """Say a failed read of the kiosk's own store apart from a failing stick."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"The kiosk's copy of {what} cannot be read ({exc.strerror or exc}). "
                         "Its store may be damaged; nothing was left on the stick.") from exc


def _originals(reports: list[dict[str, Any]], names: dict[int, str]) -> dict[str | None, str]:
    """The file of each study's original report (newest last wins), and ``"*"`` for the case's
    only original, if it has exactly one."""
    found = [rep for rep in reports if rep.get("role") == "original"]
    out: dict[str | None, str] = {rep.get("study_uid"): names[id(rep)] for rep in found}
    if len(found) == 1:
        out["*"] = names[id(found[0])]
    return out


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
