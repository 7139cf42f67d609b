"""Reports as DICOM Encapsulated PDF instances: written by the kiosk, read from the office.

The kiosk adds a report to a study as a *new* instance in a *new* series of that study (new
UIDs; the imported originals are never touched), with the patient and study attributes copied
from the study's first imported instance, so a PACS files it with the images.

The agreed markers (README, "Reports in DICOMweb") are standard attributes of the Encapsulated
PDF IOD, plus the SOP Common Language Code Sequence:

* language: Language Code Sequence (0008,0006), Code Value an RFC 5646 tag (``en``, ``zh``,
  ``zh-Hans``...), Coding Scheme Designator ``RFC5646``;
* role: Document Class Code Sequence (0040,E008) holding ``ORIGINAL`` or ``TRANSLATION``, and
  ``CERTIFIED`` for a certified translation, all in coding scheme ``99MEDPASS``;
* translator (optional): Verifying Observer Name in Verifying Observer Sequence (0040,A073).

What the kiosk writes passes ``dciodvfy`` without errors (its only warning is that the
Language Code Sequence makes this a Standard Extended SOP Class).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from kiosk import __version__

#: Encapsulated PDF Storage: the SOP Class of reports in a study (DICOM PS3.4 B.5).
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"

SCHEME = "99MEDPASS"
ORIGINAL, TRANSLATION, CERTIFIED = "ORIGINAL", "TRANSLATION", "CERTIFIED"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}

#: Patient and study attributes copied from the study's first instance (PS3.3 C.7.1.1, C.7.2.1,
#: C.7.2.2). Type 2 attributes missing there are written empty, as the IOD requires.
_COPIED = ("PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
           "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
           "AccessionNumber", "StudyDescription")
_TYPE2 = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
          "StudyID", "AccessionNumber")


class NotAReport(ValueError):
    """An Encapsulated PDF instance without the agreed markers (or not one at all)."""


@dataclass(frozen=True)
class ReportMarkers:
    """What the agreed attributes of a report instance say."""

    language: str  # "en" | "zh"
    role: str  # "original" | "translation"
    certified: bool
    translator: str | None
    title: str


@dataclass(frozen=True)
class NewReportInstance:
    """A report instance the kiosk built: its bytes and UIDs."""

    data: bytes
    sop_instance_uid: str
    series_uid: str


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _fit(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 without splitting a character.

    VR limits count bytes for validators such as dciodvfy; a Chinese character is 3 of them.
    """
    data = text.encode("utf-8")[:max_bytes]
    return data.decode("utf-8", errors="ignore").rstrip()


def normalise_language(tag: str) -> str | None:
    """``en``/``zh`` from an RFC 5646 tag (``en-GB`` → ``en``, ``zh-Hans-CN`` → ``zh``)."""
    base = tag.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGE_NAMES else None


def build_report_instance(
    header: Dataset,
    *,
    patient_name: str,
    pdf: bytes,
    title: str,
    language: str,
    role: str,
    certified: bool,
    translator: str | None,
    series_number: int,
    provenance: str,
    station: str,
) -> NewReportInstance:
    """Build a new Encapsulated PDF instance for ``pdf`` in the study of ``header``.

    Parameters
    ----------
    header : Dataset
        The header of the study's first instance (patient and study attributes come from it).
    patient_name : str
        The patient name as the kiosk decoded it (``kiosk.dicom.names``: right even for mislabelled
        GBK), written as UTF-8.
    pdf : bytes
        The report.
    title : str
        Document Title and Series Description.
    language, role, certified, translator
        The markers (see the module docstring).
    series_number : int
        Series Number of the new series.
    provenance : str
        Where the report came from (source, file or remote UID, hash), for the Contribution
        Description of the Contributing Equipment Sequence.
    station : str
        The kiosk's id (Station Name).

    Returns
    -------
    NewReportInstance
    """
    now = time.gmtime()
    date, clock = time.strftime("%Y%m%d", now), time.strftime("%H%M%S", now)
    sop_uid, series_uid = generate_uid(prefix=None), generate_uid(prefix=None)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MEDPASS_{__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    # UTF-8 holds every name and title (Chinese and Latin) in one character set.
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, clock
    ds.PatientName = patient_name
    for keyword in _COPIED:
        value = header.get(keyword)
        if value is not None and value != "":
            # str() drops the source's character set: the value is re-encoded as UTF-8.
            setattr(ds, keyword, str(value) if keyword == "ReferringPhysicianName" else value)
        elif keyword in _TYPE2:
            setattr(ds, keyword, "")
    # Encapsulated Document Series and equipment.
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate, ds.SeriesTime = date, clock
    ds.SeriesDescription = _fit(title, 64)
    ds.Manufacturer = "MedPass Kiosk"
    ds.StationName = _fit(station, 16)
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"  # workstation: a document added at the desk, not acquired
    # Encapsulated Document.
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, clock
    ds.AcquisitionDateTime = date + clock
    ds.BurnedInAnnotation = "YES"  # a report names the patient
    ds.DocumentTitle = _fit(title, 1024)
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic imaging report")]
    classes = [_code(TRANSLATION, SCHEME, "Translation")] if role == "translation" else [
        _code(ORIGINAL, SCHEME, "Original report")]
    if certified:
        classes.append(_code(CERTIFIED, SCHEME, "Certified translation"))
    ds.DocumentClassCodeSequence = classes
    ds.VerificationFlag = "VERIFIED" if certified else "UNVERIFIED"
    ds.LanguageCodeSequence = [_code(language, "RFC5646", LANGUAGE_NAMES[language])]
    equipment = Dataset()
    equipment.Manufacturer = "MedPass Kiosk"
    equipment.StationName = _fit(station, 16)
    equipment.ContributionDateTime = date + clock
    note = provenance + (f"; translator: {translator}" if translator else "")
    equipment.ContributionDescription = _fit(note, 1024)
    equipment.PurposeOfReferenceCodeSequence = [_code("109102", "DCM", "Processing Equipment")]
    ds.ContributingEquipmentSequence = [equipment]
    if translator:
        # Standard Extended (like the language): the agreed place for the translator's name.
        observer = Dataset()
        observer.VerifyingObserverName = _fit(translator, 64)
        observer.VerifyingObserverIdentificationCodeSequence = []
        observer.VerifyingOrganization = ""
        observer.VerificationDateTime = date + clock
        ds.VerifyingObserverSequence = [observer]
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")  # OB values are even
    ds.EncapsulatedDocumentLength = len(pdf)  # so readers can drop the pad byte

    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return NewReportInstance(buf.getvalue(), str(sop_uid), str(series_uid))


def read_markers(ds: Dataset) -> ReportMarkers:
    """The agreed markers of a report instance's header.

    Raises
    ------
    NotAReport
        Not an Encapsulated PDF, no supported language, or neither ORIGINAL nor TRANSLATION.
    """
    if str(ds.get("SOPClassUID", "")) != ENCAPSULATED_PDF:
        raise NotAReport("not an Encapsulated PDF instance")
    languages = [normalise_language(str(item.get("CodeValue", "")))
                 for item in ds.get("LanguageCodeSequence") or []]
    language = next((lang for lang in languages if lang), None)
    if language is None:
        raise NotAReport("no Language Code Sequence with 'en' or 'zh'")
    codes = {str(item.get("CodeValue", "")).upper()
             for item in ds.get("DocumentClassCodeSequence") or []
             if str(item.get("CodingSchemeDesignator", "")).upper() == SCHEME}
    if TRANSLATION in codes:
        role = "translation"
    elif ORIGINAL in codes:
        role = "original"
    else:
        raise NotAReport(f"no Document Class Code {TRANSLATION} or {ORIGINAL} ({SCHEME})")
    translator = None
    for observer in ds.get("VerifyingObserverSequence") or []:
        name = str(observer.get("VerifyingObserverName", "")).strip()
        if name:
            translator = name.replace("^", " ").strip()
            break
    return ReportMarkers(language=language, role=role, certified=CERTIFIED in codes,
                         translator=translator, title=str(ds.get("DocumentTitle", "")).strip())


def extract_pdf(data: bytes) -> tuple[Dataset, bytes]:
    """Parse a report instance's bytes; return its header and the PDF inside.

    Raises
    ------
    NotAReport
        The bytes are not DICOM, or hold no PDF.
    """
    try:
        ds = dcmread(io.BytesIO(data))
        doc = bytes(ds.EncapsulatedDocument)
    except Exception as exc:  # noqa: BLE001 - remote bytes are untrusted
        raise NotAReport(f"cannot read the instance ({type(exc).__name__})") from None
    length = ds.get("EncapsulatedDocumentLength")
    if isinstance(length, int) and 0 < length <= len(doc):
        doc = doc[:length]
    elif doc.endswith(b"\0"):
        doc = doc[:-1]  # the pad byte of an odd-length PDF
    if not doc.startswith(b"%PDF-"):
        raise NotAReport("the encapsulated document is not a PDF")
    return ds, doc
