"""The sample hospital disc: the sample patient's studies in a DICOMDIR file-set, plus the junk.

Real patient discs cannot be used for development, and pydicom's bundled test
files are single instances. `build_sample_disc` writes what a Chinese hospital
hands a patient: a DICOMDIR file-set with a multi-slice CT and a chest CR study
for one patient whose name is in GB18030 (the instances come from
:mod:`kiosk.samples.studies`), plus the usual non-DICOM junk (a Windows viewer,
AUTORUN.INF, a PDF report from :mod:`kiosk.samples.pdf`). Everything is
deterministic for a given seed (UIDs are hashes of the seed, no clocks), so
tests can compare bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.fileset import FileSet

from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.studies import PATIENT_ID, cr_dataset, ct_dataset, sample_uid

__all__ = ["SampleDisc", "build_sample_disc"]


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


# File-set ID written in the DICOMDIR.
_FILESET_ID = "SZH_SAMPLE_CD"


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

    ct_study = sample_uid(seed, "study", "ct")
    cr_study = sample_uid(seed, "study", "cr")
    ct_series = sample_uid(seed, "series", "ct")
    cr_series = sample_uid(seed, "series", "cr")
    frame_of_reference = sample_uid(seed, "for", "ct")

    fs = FileSet()
    fs.ID = _FILESET_ID
    fs.UID = sample_uid(seed, "fileset")  # FileSet() would pick a random one
    # FileSet.add() saves each dataset to its staging directory at once, so
    # only one slice's pixels are in memory at a time.
    for i in range(ct_slices):
        fs.add(
            ct_dataset(
                study_uid=ct_study,
                series_uid=ct_series,
                for_uid=frame_of_reference,
                sop_uid=sample_uid(seed, "ct", i),
                index=i,
                slices=ct_slices,
                size=size,
                seed=seed,
            )
        )
    for i, lateral in enumerate((False, True)):
        fs.add(
            cr_dataset(
                study_uid=cr_study,
                series_uid=cr_series,
                sop_uid=sample_uid(seed, "cr", i),
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
