"""The sample patient's hospital studies: synthetic DICOM instances as a hospital writes them.

One patient whose name is in GB18030 (``Li^Hua=李^华=``), an axial CT chest
(`ct_dataset`) and a chest CR, PA and lateral (`cr_dataset`), each instance with
all the modules its IOD requires. Also the pieces every synthetic instance
shares: deterministic ``2.25.`` UIDs (`sample_uid`, hashes of their parts, no
clocks or randomness), DS strings (`ds_str`) and a fixed file meta
(`make_file_meta`), so the same inputs always give the same bytes.
"""

from __future__ import annotations

import uuid

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
)

from kiosk.samples.phantoms import cr_chest, ct_phantom_hu

__all__ = [
    "CHARSET",
    "INSTITUTION",
    "PATIENT_ID",
    "PATIENT_NAME",
    "PATIENT_NAME_BYTES",
    "cr_dataset",
    "ct_dataset",
    "ds_str",
    "make_file_meta",
    "sample_uid",
]


# --- the sample patient, as a Shenzhen hospital would write them -------------

PATIENT_ID = "SZ20261127001"
# Stored exactly as Chinese hospitals (and the DICOM standard's GB18030
# example) write it, trailing "=" included: Alphabetic=Ideographic=Phonetic.
PATIENT_NAME_BYTES = "Li^Hua=李^华=".encode("gb18030")
PATIENT_NAME = "Li^Hua=李^华="
CHARSET = "GB18030"
INSTITUTION = "深圳市示例人民医院"  # "Shenzhen Example People's Hospital"

# Namespace for name-based (version 5) UUIDs of sample objects.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:medpass-kiosk:sample-data")


def sample_uid(*parts: object) -> UID:
    """Deterministic ``2.25.`` UID from `parts` (same parts -> same UID).

    A name-based UUID in the ``2.25`` form (PS3.5 B.2). Not
    ``generate_uid(prefix=None, entropy_srcs=...)``: pydicom ignores
    `entropy_srcs` when `prefix` is None and returns a random UUID.
    """
    name = "\x1f".join(map(str, parts))
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")


def ds_str(value: float) -> str:
    """Format a number for a DS element (at most 16 characters)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def make_file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    """File meta for `sop_instance`: explicit VR little endian, a fixed implementation.

    Nothing in it depends on the clock or on the installed pydicom version.
    """
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



def ct_dataset(
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
    ds.file_meta = make_file_meta(CTImageStorage, sop_uid)
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
    ds.SliceThickness = ds_str(thickness)
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = ds_str(fov)
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
    ds.ImagePositionPatient = [ds_str(origin), ds_str(origin), ds_str(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [ds_str(spacing), ds_str(spacing)]
    ds.SliceLocation = ds_str(z)
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
    hu = ct_phantom_hu(size, size, z_fraction, rng)
    ds.PixelData = np.clip(np.rint(hu) + 1024, -32768, 32767).astype("<i2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def cr_dataset(
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
    ds.file_meta = make_file_meta(ComputedRadiographyImageStorage, sop_uid)
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
    ds.ImagerPixelSpacing = [ds_str(430.0 / rows), ds_str(430.0 / columns)]
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
    ds.PixelData = cr_chest(rows, columns, lateral).astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds
