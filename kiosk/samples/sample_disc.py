"""Synthetic hospital media and studies for the demo, tests and benchmarks.

Real patient discs cannot be used for development, and pydicom's bundled test
files are single instances. This module writes what a Chinese hospital hands a
patient: a DICOMDIR file-set with a multi-slice CT and a chest CR study for one
patient whose name is in GB18030, plus the usual non-DICOM junk (a Windows
viewer, AUTORUN.INF, a PDF report). Everything is deterministic for a given
seed (UIDs are hashes of the seed, no clocks), so tests can compare bytes.

`write_study` is the fast path for scale tests and benchmarks: one series of N
instances written from a single template dataset.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import FileSet
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

__all__ = ["SampleDisc", "build_sample_disc", "minimal_pdf", "write_study"]


@dataclass(frozen=True)
class SampleDisc:
    """What `build_sample_disc` wrote.

    Attributes
    ----------
    root : Path
        The disc root (holds ``DICOMDIR``).
    instances : int
        Number of DICOM instances written, excluding the DICOMDIR.
    study_uids : tuple of str
        Study Instance UIDs, CT study first.
    patient_id : str
        The Patient ID shared by all instances.
    report_pdf : Path
        The hospital report (``REPORT/REPORT.PDF``).
    """

    root: Path
    instances: int
    study_uids: tuple[str, ...]
    patient_id: str
    report_pdf: Path


# --- the sample patient, as a Shenzhen hospital would write them -------------

PATIENT_ID = "SZ20261127001"
# Stored exactly as Chinese hospitals (and the DICOM standard's GB18030
# example) write it, trailing "=" included: Alphabetic=Ideographic=Phonetic.
PATIENT_NAME_BYTES = "Li^Hua=李^华=".encode("gb18030")
PATIENT_NAME = "Li^Hua=李^华="
CHARSET = "GB18030"
INSTITUTION = "深圳市示例人民医院"  # "Shenzhen Example People's Hospital"
_FILESET_ID = "SZH_SAMPLE_CD"


# Namespace for name-based (version 5) UUIDs of sample objects.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:medpass-kiosk:sample-data")


def _uid(*parts: object) -> UID:
    """Deterministic ``2.25.`` UID from `parts` (same parts -> same UID).

    A name-based UUID in the ``2.25`` form (PS3.5 B.2). Not
    ``generate_uid(prefix=None, entropy_srcs=...)``: pydicom ignores
    `entropy_srcs` when `prefix` is None and returns a random UUID.
    """
    name = "\x1f".join(map(str, parts))
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")


def _ds_str(value: float) -> str:
    """Format a number for a DS element (at most 16 characters)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # Fixed implementation identity: pydicom would otherwise stamp its own
    # version string, making the bytes depend on the installed pydicom.
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDPASS_SAMPLE"
    return meta


def _patient_and_study(
    ds: Dataset,
    *,
    study_uid: str,
    study_date: str,
    study_time: str,
    accession: str,
    study_id: str,
    description: str,
) -> None:
    """Patient, General Study, Patient Study and General Equipment modules."""
    ds.SpecificCharacterSet = CHARSET
    # Raw bytes so the value is byte-for-byte what the hospital wrote.
    ds.add_new(0x00100010, "PN", PATIENT_NAME_BYTES)
    ds.PatientID = PATIENT_ID
    ds.IssuerOfPatientID = "SZH"
    ds.PatientBirthDate = "19850314"
    ds.PatientSex = "F"
    ds.PatientAge = "041Y"
    ds.PatientWeight = "58"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.AccessionNumber = accession
    ds.StudyID = study_id
    ds.StudyDescription = description
    ds.ReferringPhysicianName = "Zhang^Wei=张^伟"
    ds.InstitutionName = INSTITUTION
    ds.Manufacturer = "MedPass Synthetic"
    ds.ManufacturerModelName = "Phantom"
    ds.StationName = "SZH-RAD-01"
    ds.SoftwareVersions = "1.0"


def _sop_common(ds: Dataset, sop_class: str, sop_instance: str, date: str, time: str) -> None:
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time


def _grid(rows: int, columns: int, fov_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in mm, origin at the image centre."""
    spacing = fov_mm / max(rows, columns)
    y = (np.arange(rows, dtype=np.float32) - (rows - 1) / 2) * spacing
    x = (np.arange(columns, dtype=np.float32) - (columns - 1) / 2) * spacing
    return np.meshgrid(x, y)


def _ct_phantom_hu(
    rows: int, columns: int, z_fraction: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A chest-like CT slice in Hounsfield units (float32).

    Air outside, soft-tissue body, two lungs whose size changes along z, a
    spine and ribs (bone), the heart/aorta, and a lung nodule that only shows
    in the middle third of the stack, so slices differ like a real scan.

    Parameters
    ----------
    rows, columns : int
        Image size in pixels.
    z_fraction : float
        Position in the stack, 0 (top) to 1 (bottom).
    rng : numpy.random.Generator, optional
        When given, adds mild quantum-like noise (sigma 8 HU).
    """
    x, y = _grid(rows, columns, 350.0)
    img = np.full((rows, columns), -1000.0, dtype=np.float32)

    def ellipse(cx: float, cy: float, a: float, b: float) -> np.ndarray:
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0

    img[ellipse(0, 10, 160, 115)] = -90.0  # subcutaneous fat
    img[ellipse(0, 10, 148, 104)] = 40.0  # muscle / soft tissue
    lung_a = 45 + 20 * np.sin(np.pi * z_fraction)  # lungs widest mid-chest
    img[ellipse(-75, 0, lung_a, 80)] = -850.0
    img[ellipse(75, 0, lung_a, 80)] = -850.0
    if 0.3 < z_fraction < 0.9:  # heart appears below the arch
        img[ellipse(15, -5, 45, 40)] = 45.0
    img[ellipse(-15, 35, 14, 14)] = 160.0  # aorta, contrast-enhanced
    img[ellipse(0, 85, 20, 18)] = 700.0  # vertebral body
    ring = ellipse(0, 10, 140, 98) & ~ellipse(0, 10, 132, 90) & (np.abs(y - 10) > 40)
    img[ring] = 500.0  # rib arcs
    if 0.35 < z_fraction < 0.65:  # a solid nodule in the right lung
        r = 12 * np.sin(np.pi * (z_fraction - 0.35) / 0.3) + 1
        img[ellipse(-75, -25, r, r)] = 30.0
    if rng is not None:
        img += rng.normal(0.0, 8.0, img.shape).astype(np.float32)
    return img


def _cr_chest(rows: int, columns: int, lateral: bool) -> np.ndarray:
    """A chest radiograph-like image, 12-bit, MONOCHROME2 (bone is bright)."""
    x, y = _grid(rows, columns, 430.0)
    img = np.full((rows, columns), 150.0, dtype=np.float32)  # direct exposure

    def ellipse(cx: float, cy: float, a: float, b: float) -> np.ndarray:
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0

    if lateral:
        img[ellipse(0, 20, 130, 200)] = 1700.0
        img[ellipse(-10, -10, 90, 150)] = 900.0  # lungs superimposed
        img[ellipse(25, 40, 55, 65)] = 1900.0  # heart
        img[ellipse(105, 20, 16, 170) & ellipse(0, 20, 130, 200)] = 2500.0  # spine
    else:
        img[ellipse(0, 20, 190, 200)] = 1700.0  # soft tissue
        img[ellipse(-85, -10, 70, 150)] = 850.0
        img[ellipse(85, -10, 70, 150)] = 850.0
        img[ellipse(20, 60, 75, 70)] = 1950.0  # heart, left of patient
        img[(np.abs(x) < 14) & ellipse(0, 20, 190, 200)] = 2300.0  # spine
        ribs = (np.sin((y + 0.0008 * x**2) / 11.0) > 0.85) & ellipse(0, -10, 170, 170)
        img[ribs] += 600.0
    # Smooth heel-effect gradient, like a real detector exposure.
    img *= 1.0 + 0.08 * (y / float(np.abs(y).max() or 1.0))
    return np.clip(img, 0, 4095).astype(np.uint16)


def _ct_dataset(
    *,
    study_uid: str,
    series_uid: str,
    for_uid: str,
    sop_uid: str,
    index: int,
    slices: int,
    size: int,
    seed: int,
) -> Dataset:
    """One axial CT Image Storage instance with all IOD-required modules."""
    thickness = 5.0
    fov = 350.0
    spacing = fov / size
    z = -thickness * index  # head-first supine: z decreases towards the feet
    date, time = "20261127", "093512"

    ds = Dataset()
    ds.file_meta = _file_meta(CTImageStorage, sop_uid)
    _patient_and_study(
        ds,
        study_uid=study_uid,
        study_date=date,
        study_time="093012",
        accession="CT20261127001",
        study_id="1",
        description="胸部CT平扫 Chest CT",
    )
    _sop_common(ds, CTImageStorage, sop_uid, date, time)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionDate = date
    ds.ContentDate = date
    ds.AcquisitionTime = time
    ds.ContentTime = time
    # General Series / CT acquisition
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 2
    ds.SeriesDate = date
    ds.SeriesTime = "093505"
    ds.SeriesDescription = "Chest 5.0 mm"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.ProtocolName = "CHEST ROUTINE"
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = _ds_str(thickness)
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _ds_str(fov)
    ds.DistanceSourceToDetector = "1040"
    ds.DistanceSourceToPatient = "570"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "160"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = 200
    ds.Exposure = 100
    ds.FilterType = "BODY FILTER"
    ds.ConvolutionKernel = "STANDARD"
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    # Image Plane
    origin = -fov / 2 + spacing / 2
    ds.ImagePositionPatient = [_ds_str(origin), _ds_str(origin), _ds_str(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [_ds_str(spacing), _ds_str(spacing)]
    ds.SliceLocation = _ds_str(z)
    # Image Pixel: signed 16-bit, stored = HU + 1024 (a common vendor choice)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = ["40", "-600"]
    ds.WindowWidth = ["400", "1500"]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
    ds.LossyImageCompression = "00"
    rng = np.random.default_rng([seed, index])
    z_fraction = index / max(slices - 1, 1)
    hu = _ct_phantom_hu(size, size, z_fraction, rng)
    ds.PixelData = np.clip(np.rint(hu) + 1024, -32768, 32767).astype("<i2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def _cr_dataset(
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    index: int,
    size: int,
    lateral: bool,
) -> Dataset:
    """One CR Image Storage chest radiograph (PA or left lateral)."""
    date, time = "20261125", "151044"
    rows = columns = 2 * size
    ds = Dataset()
    ds.file_meta = _file_meta(ComputedRadiographyImageStorage, sop_uid)
    _patient_and_study(
        ds,
        study_uid=study_uid,
        study_date=date,
        study_time="150830",
        accession="CR20261125007",
        study_id="2",
        description="胸部正侧位 Chest PA/LAT",
    )
    _sop_common(ds, ComputedRadiographyImageStorage, sop_uid, date, time)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionDate = date
    ds.ContentDate = date
    ds.AcquisitionTime = time
    ds.ContentTime = time
    ds.Modality = "CR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Chest"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "LL" if lateral else "PA"
    # Type 2C in General Image because CR has no Image Orientation (Patient):
    # rows run to the patient's left (PA) or posterior (lateral), columns to feet.
    ds.PatientOrientation = ["P", "F"] if lateral else ["L", "F"]
    ds.InstanceNumber = index + 1
    ds.KVP = "125" if lateral else "110"
    ds.ExposureTime = "20"
    ds.XRayTubeCurrent = 250
    ds.DistanceSourceToDetector = "1800"
    ds.ImagerPixelSpacing = [_ds_str(430.0 / rows), _ds_str(430.0 / columns)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "1600"
    ds.WindowWidth = "3000"
    ds.LossyImageCompression = "00"
    ds.PixelData = _cr_chest(rows, columns, lateral).astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


# --- non-DICOM junk found on real discs ---------------------------------------


def _viewer_stub() -> bytes:
    """An inert MZ (DOS header) stub standing in for the bundled viewer.

    It has no PE header (e_lfanew is 0), so Windows will not run it; the only
    code is the standard DOS stub that prints "This program cannot be run in
    DOS mode" and exits. It exists so the scanner meets the ``VIEWER.EXE``
    every hospital disc carries and learns to ignore (never execute) it.
    """
    header = bytearray(64)
    header[0:2] = b"MZ"
    header[2:4] = (0x90).to_bytes(2, "little")  # bytes on last page
    header[4:6] = (3).to_bytes(2, "little")  # pages in file
    header[8:10] = (4).to_bytes(2, "little")  # header size in paragraphs
    header[0x18:0x1A] = (0x40).to_bytes(2, "little")  # relocation table offset
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    body = bytes(header) + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21" + stub
    body += b"MedPass sample disc - placeholder viewer, not a program.\r\n"
    return body + b"\x00" * (384 - len(body))


_AUTORUN = (
    "[autorun]\r\n"
    "open=VIEWER\\VIEWER.EXE\r\n"
    "icon=VIEWER\\VIEWER.EXE,0\r\n"
    "label=SZH IMAGING\r\n"
    "action=Open DICOM Viewer\r\n"
).encode("ascii")


def _pdf_escape(text: str) -> bytes:
    """Encode `text` as the inside of a PDF literal string (WinAnsi subset)."""
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def minimal_pdf(text_lines: list[str]) -> bytes:
    """Return a small, structurally valid PDF 1.4 showing `text_lines`.

    One A4 page, Helvetica 11 pt, one line per entry. The cross-reference
    table holds exact byte offsets, so strict readers (pdftotext, Ghostscript)
    open it without repair. Output is deterministic (no dates).

    Parameters
    ----------
    text_lines : list of str
        Lines of text. Characters outside Latin-1 are replaced by ``?``: the
        standard fonts cannot show CJK, and hospital reports in Chinese are
        stand-ins here, not the product's translated reports.

    Returns
    -------
    bytes
        The PDF file, starting with ``%PDF-1.4`` and ending with ``%%EOF``.
    """
    content = bytearray(b"BT\n/F1 11 Tf\n14 TL\n56 790 Td\n")
    for line in text_lines:
        content += b"(" + _pdf_escape(line) + b") Tj T*\n"
    content += b"ET\n"

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
        b"/Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + bytes(content) + b"endstream",
        b"<< /Producer (MedPass Kiosk sample disc) /Title (Radiology report) >>",
    ]
    # The binary comment tells transfer tools the file is not plain text.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF"
        % (len(objects) + 1, len(objects), xref_at)
    )
    return bytes(out)


def _report_lines(disc_study_uids: tuple[str, ...]) -> list[str]:
    return [
        "Shenzhen Example People's Hospital - Department of Radiology",
        "Radiology Report (sample, synthetic data)",
        "",
        f"Patient: LI Hua    ID: {PATIENT_ID}    Sex: F    DOB: 1985-03-14",
        "Exam: CT chest, plain (2026-11-27); Chest X-ray PA/LAT (2026-11-25)",
        "",
        "Findings: A solid nodule of about 2.5 cm in the right upper lobe.",
        "No pleural effusion. Heart size normal. Bones intact.",
        "Impression: Right upper lobe nodule; follow-up CT advised.",
        "",
        f"Study UID: {disc_study_uids[0]}",
    ]


def build_sample_disc(
    dest: Path, *, ct_slices: int = 20, size: int = 128, seed: int = 1
) -> SampleDisc:
    """Write a realistic Chinese hospital disc tree into `dest`.

    The disc holds one patient (``Li^Hua=李^华=``, GB18030) with two studies:
    a CT chest of `ct_slices` axial slices and a CR chest (PA + lateral). A
    DICOMDIR written by :class:`pydicom.fileset.FileSet` indexes them, so the
    instances live under ``PT000000/ST00000n/SE000000/IM00000n``. Beside them
    are ``VIEWER/VIEWER.EXE`` (an inert stub), ``AUTORUN.INF`` and
    ``REPORT/REPORT.PDF``.

    Parameters
    ----------
    dest : Path
        Target directory; created if missing. It should be empty: existing
        files are overwritten or left in place (as instances the DICOMDIR
        does not list).
    ct_slices : int, optional
        Number of CT slices (default 20).
    size : int, optional
        CT matrix (size x size); the CR images are 2*size square.
    seed : int, optional
        Determines every UID and the image noise; the same seed gives
        byte-identical output.

    Returns
    -------
    SampleDisc
        Paths, counts and UIDs of what was written.
    """
    if ct_slices < 1 or size < 8:
        raise ValueError("ct_slices must be >= 1 and size >= 8")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    ct_study = _uid(seed, "study", "ct")
    cr_study = _uid(seed, "study", "cr")
    ct_series = _uid(seed, "series", "ct")
    cr_series = _uid(seed, "series", "cr")
    frame_of_reference = _uid(seed, "for", "ct")

    fs = FileSet()
    fs.ID = _FILESET_ID
    fs.UID = _uid(seed, "fileset")  # FileSet() would pick a random one
    # FileSet.add() saves each dataset to its staging directory at once, so
    # only one slice's pixels are in memory at a time.
    for i in range(ct_slices):
        fs.add(
            _ct_dataset(
                study_uid=ct_study,
                series_uid=ct_series,
                for_uid=frame_of_reference,
                sop_uid=_uid(seed, "ct", i),
                index=i,
                slices=ct_slices,
                size=size,
                seed=seed,
            )
        )
    for i, lateral in enumerate((False, True)):
        fs.add(
            _cr_dataset(
                study_uid=cr_study,
                series_uid=cr_series,
                sop_uid=_uid(seed, "cr", i),
                index=i,
                size=size,
                lateral=lateral,
            )
        )
    fs.write(dest)
    instances = len(fs)

    (dest / "VIEWER").mkdir(exist_ok=True)
    (dest / "VIEWER" / "VIEWER.EXE").write_bytes(_viewer_stub())
    (dest / "AUTORUN.INF").write_bytes(_AUTORUN)
    (dest / "REPORT").mkdir(exist_ok=True)
    study_uids = (str(ct_study), str(cr_study))
    report = dest / "REPORT" / "REPORT.PDF"
    report.write_bytes(minimal_pdf(_report_lines(study_uids)))

    return SampleDisc(
        root=dest,
        instances=instances,
        study_uids=study_uids,
        patient_id=PATIENT_ID,
        report_pdf=report,
    )


# --- fast bulk studies ---------------------------------------------------------

_SOP_CLASS_FOR_MODALITY = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
}


def _study_paths(dest: Path, layout: str, instances: int) -> Iterator[Path]:
    if layout == "flat":
        for i in range(1, instances + 1):
            yield dest / f"IM{i:05d}"
    elif layout == "nested":
        # Vendor-style tree without DICOMDIR: DICOM/ST000001/SE000001/IMnnnnn.
        series_dir = dest / "DICOM" / "ST000001" / "SE000001"
        for i in range(1, instances + 1):
            yield series_dir / f"IM{i:05d}"
    else:
        raise ValueError(f"unknown layout {layout!r} (use 'flat' or 'nested')")


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


class _SplicedWriter:
    """Writes instances that differ from a template in a few elements only.

    pydicom spends ~4 ms per 512x512 file encoding ~50 elements one by one.
    Here the unchanging runs of elements are encoded once (by pydicom); per
    instance only the file meta and the `varying` elements are re-encoded and
    the pixel buffer is appended unchanged: about 0.5 ms per file. The result
    is checked against ``dcmwrite`` for the first instance (`matches`), and
    callers fall back to ``dcmwrite`` if that ever differs.
    """

    def __init__(self, ds: Dataset, varying: list[str]) -> None:
        self.ds = ds
        self.enabled = True
        self.charset = ds.get("SpecificCharacterSet", "ISO_IR 6")
        self.tags = sorted(Tag(_tag(kw)) for kw in varying)
        pixel_tag = Tag(0x7FE00010)
        if max(ds.keys()) != pixel_tag:
            raise ValueError("PixelData must be the last element of the template")
        bounds = [Tag(0), *self.tags, pixel_tag]
        # Static runs of elements between the varying ones (PixelData excluded).
        self.segments = [
            self._encode(ds[(lo + 1 if i else lo) : hi])
            for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
        ]

    @staticmethod
    def _buffer() -> DicomBytesIO:
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        return fp

    def _encode(self, part: Dataset) -> bytes:
        fp = self._buffer()
        write_dataset(fp, part, parent_encoding=self.charset)
        return fp.getvalue()

    def _header(self, pixel_nbytes: int) -> bytes:
        """Everything up to and including the PixelData element header."""
        fp = self._buffer()
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, self.ds.file_meta, enforce_standard=True)
        for segment, tag in zip(self.segments, self.tags, strict=False):
            fp.write(segment)
            write_data_element(fp, self.ds[tag], self.charset)
        fp.write(self.segments[-1])
        # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved, length.
        fp.write(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_nbytes.to_bytes(4, "little"))
        return fp.getvalue()

    def matches(self, reference: bytes, pixels: np.ndarray) -> bool:
        return self._header(pixels.nbytes) + pixels.tobytes() == reference

    def write(self, path: Path, pixels: np.ndarray) -> None:
        with open(path, "wb") as fp:
            fp.write(self._header(pixels.nbytes))
            fp.write(np.ascontiguousarray(pixels).data.cast("B"))


def write_study(
    dest: Path,
    *,
    instances: int,
    rows: int = 512,
    columns: int = 512,
    patient_name: str = "TEST^BENCH",
    patient_id: str = "BENCH001",
    modality: str = "CT",
    seed: int = 1,
    layout: str = "flat",
) -> list[Path]:
    """Quickly write one study with one series of `instances` images.

    A single template dataset is built; per instance only the SOP Instance
    UID, Instance Number, position and a small pixel marker change. The first
    file is written by ``dcmwrite``; the rest are spliced from pre-encoded
    elements (checked byte-identical to ``dcmwrite``), about 2.5 s for
    2,000 x 512x512 (1 GiB) on the development VM. No DICOMDIR. Memory stays
    at a few pixel frames (~60 MB RSS).

    Parameters
    ----------
    dest : Path
        Target directory (created if missing).
    instances : int
        Number of instances.
    rows, columns : int, optional
        Image size; 16-bit signed pixels.
    patient_name, patient_id : str, optional
        Patient identity. A non-ASCII name is written as UTF-8 (ISO_IR 192).
    modality : str, optional
        ``"CT"`` (CT Image Storage), ``"MR"``, ``"CR"``; anything else is
        written as Secondary Capture with that Modality.
    seed : int, optional
        Determines the UIDs: the same arguments give the same UIDs (and
        bytes), so use different seeds for distinct studies.
    layout : str, optional
        ``"flat"``: files ``IM00001``… directly in `dest` (no extension);
        ``"nested"``: under ``DICOM/ST000001/SE000001/``.

    Returns
    -------
    list of Path
        The files written, in instance order.
    """
    if instances < 0:
        raise ValueError("instances must be >= 0")
    dest = Path(dest)
    paths = list(_study_paths(dest, layout, instances))
    if not paths:
        dest.mkdir(parents=True, exist_ok=True)
        return []
    paths[0].parent.mkdir(parents=True, exist_ok=True)

    key = (seed, patient_id, modality, rows, columns, instances)
    sop_class = _SOP_CLASS_FOR_MODALITY.get(modality.upper(), SecondaryCaptureImageStorage)
    study_uid = _uid("bench", *key, "study")
    series_uid = _uid("bench", *key, "series")
    date, time = "20260101", "080000"

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, "1.2")
    if not patient_name.isascii():
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
    ds.AccessionNumber = f"A{seed:08d}"
    ds.Modality = modality
    ds.Manufacturer = "MedPass Synthetic"
    ds.ReferringPhysicianName = ""
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.AcquisitionNumber = 1
    # Modality-specific attributes, so dciodvfy finds no errors for CT, MR, CR
    # or Secondary Capture (the scanner and exporter see realistic headers).
    volumetric = sop_class in (CTImageStorage, MRImageStorage)
    if volumetric:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = _uid("bench", *key, "for")
        ds.PositionReferenceIndicator = ""
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", "0"]
        ds.SliceLocation = "0"
        ds.PixelSpacing = ["0.7", "0.7"]
        ds.SliceThickness = "1"
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PatientOrientation = ["L", "F"]
    if sop_class == CTImageStorage:
        ds.KVP = "120"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
    elif sop_class == MRImageStorage:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "1.5"
    elif sop_class == ComputedRadiographyImageStorage:
        ds.ViewPosition = "PA"
        ds.KVP = "110"
    else:
        ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = b""
    ds["PixelData"].VR = "OW"

    # A handful of phantom slices cycled through the series keeps the images
    # plausible without computing a phantom per instance (the slow part).
    frames = [
        np.clip(np.rint(_ct_phantom_hu(rows, columns, k / 7)) + 1024, -32768, 32767)
        .astype("<i2")
        for k in range(8)
    ]
    marker = min(8, rows, columns)
    buf = np.empty((rows, columns), dtype="<i2")
    varying = ["SOPInstanceUID", "InstanceNumber"]
    if volumetric:
        varying += ["ImagePositionPatient", "SliceLocation"]
    meta = ds.file_meta
    writer: _SplicedWriter | None = None
    for i, path in enumerate(paths):
        sop_uid = _uid("bench", *key, "sop", i)
        ds.SOPInstanceUID = sop_uid
        meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = i + 1
        if volumetric:
            z = _ds_str(-1.0 * i)
            ds.ImagePositionPatient = ["0", "0", z]
            ds.SliceLocation = z
        np.copyto(buf, frames[(i * 8) // instances])
        # A corner marker with the instance number makes every frame's pixel
        # bytes unique (content-addressed stores must not collapse them).
        buf[:marker, :marker] = i % 32768
        buf[0, 0] = i // 32768
        if writer is None:
            # First instance: the reference encoding by dcmwrite, and the
            # check that the spliced encoding reproduces it byte for byte.
            ds.PixelData = buf.tobytes()
            with open(path, "wb") as fp:
                dcmwrite(fp, ds, enforce_file_format=True)
            writer = _SplicedWriter(ds, varying)
            if not writer.matches(path.read_bytes(), buf):
                writer.enabled = False
            continue
        if writer.enabled:
            writer.write(path, buf)
        else:
            ds.PixelData = buf.tobytes()
            with open(path, "wb") as fp:
                dcmwrite(fp, ds, enforce_file_format=True)
    return paths

