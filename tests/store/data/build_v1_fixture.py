"""Builds ``v1-store.tar.gz``: a data directory written by the single-file store (layout 1).

Run once, with the code of commit fb88506 (before the per-case layout), to make the fixture the
migration tests upgrade. Kept for the record: today's code writes layout 2, so running it again
would not reproduce layout 1.

    .venv/bin/python tests/store/data/build_v1_fixture.py

What is in it: three cases (one split off a two-patient medium, one with a GBK Chinese name),
a merged report, a confirmed identity, a verified export, a link, hospital cards, outbox jobs
(done on a fake cloud) and the audit trail.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from kiosk.bootstrap import build_service
from kiosk.cloud.fake import FakeCloud
from kiosk.samples.bulk import write_study
from kiosk.samples.pdf import minimal_pdf

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Write ``v1-store.tar.gz`` beside this script."""
    import sys

    sys.path.insert(0, str(HERE.parent.parent.parent))
    from tests.sync_kit import fake_syncer

    work = Path(tempfile.mkdtemp())
    data = work / "data"
    service = build_service(data_dir=data, env={"KIOSK_LINK_BASE_URL": "https://office.test"})
    a = write_study(work / "a", instances=2, rows=8, columns=8, seed=1, patient_id="PA")
    r1 = service.import_path(work / "a")
    case1 = r1["case_id"]
    service.confirm_identity(case1, passport_name="SMITH JOHN", birth_date="1970-01-02")
    pdf = work / "report.pdf"
    pdf.write_bytes(minimal_pdf(["Report of case one"]))
    service.attach_report(case1, pdf, "zh", "original")
    # A medium with two patients: imported as one case, then split.
    two = work / "two"
    write_study(two / "p1", instances=2, rows=8, columns=8, seed=2, patient_id="PB")
    write_study(two / "p2", instances=1, rows=8, columns=8, seed=3, patient_id="PC")
    r2 = service.import_path(two)
    service.file_by_patient(r2, prior=[])
    # A GBK name labelled ISO_IR 100 (common on Chinese CDs).
    import pydicom

    gbk = work / "gbk"
    paths = write_study(gbk, instances=1, rows=8, columns=8, seed=4, patient_id="PD")
    ds = pydicom.dcmread(paths[0])
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds["PatientName"].value = "WANG^XIAODONG=王^小东".encode("gbk")
    ds.save_as(paths[0])
    service.import_path(gbk)
    (work / "stick").mkdir()
    service.export_case(case1, work / "stick", encrypt=False)
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    syncer.run_once()
    service._syncer = syncer
    service.case_link(case1)
    del a
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(data.rglob("*")):
            if path.is_file() and "keys" not in path.parts and "logs" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(data)))
    (HERE / "v1-store.tar.gz").write_bytes(buf.getvalue())
    shutil.rmtree(work)
    print(len(buf.getvalue()), "bytes")


if __name__ == "__main__":
    main()
