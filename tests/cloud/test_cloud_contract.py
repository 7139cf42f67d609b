"""One contract, two clouds: the in-memory fake and a real Orthanc behave the same to the kiosk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.cloud.dicomweb import DicomWebCloud
from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.protocol import Cloud, CloudAuthError, CloudUnavailable
from kiosk.dicom.encapsulated import (
    ENCAPSULATED_PDF,
    build_report_instance,
    extract_pdf,
    read_markers,
)
from kiosk.samples.bulk import write_study
from kiosk.samples.pdf import minimal_pdf
from tests.orthanc import PASSWORD, USER, OrthancServer, free_port

_seed = iter(range(1000, 2000))


class Rig:
    """A cloud under test, plus ways to break it the way the real world does."""

    def __init__(self, kind: str, orthanc: OrthancServer | None) -> None:
        self.kind = kind
        self.orthanc = orthanc
        self.fake = FakeCloud()
        self.cloud: Cloud = self.fake if orthanc is None else DicomWebCloud(
            orthanc.dicomweb, user=USER, password=PASSWORD, timeout=10)

    def with_wrong_password(self) -> Cloud:
        if self.orthanc is None:
            self.fake.accept_credentials = False
            return self.fake
        return DicomWebCloud(self.orthanc.dicomweb, user=USER, password="wrong", timeout=10)

    def unreachable(self) -> Cloud:
        if self.orthanc is None:
            self.fake.online = False
            return self.fake
        return DicomWebCloud(f"http://127.0.0.1:{free_port()}/dicom-web", timeout=5)


@pytest.fixture(params=["fake", "orthanc"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    server = request.getfixturevalue("orthanc") if request.param == "orthanc" else None
    yield Rig(request.param, server)


def _study(tmp_path: Path, n: int = 3) -> list[tuple[str, bytes]]:
    import pydicom

    paths = write_study(tmp_path / "study", instances=n, rows=16, columns=16, seed=next(_seed),
                        patient_id=f"CONTRACT-{uuid.uuid4().hex[:6]}")
    return [(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID), p.read_bytes())
            for p in paths]


def _study_uid(data: bytes) -> str:
    import io

    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).StudyInstanceUID)


def test_a_reachable_server_with_good_credentials_answers_ping(rig: Rig) -> None:
    rig.cloud.ping()


def test_stored_instances_are_found_once_each_even_when_sent_twice(rig: Rig,
                                                                   tmp_path: Path) -> None:
    items = _study(tmp_path)
    first = rig.cloud.store(items)
    second = rig.cloud.store(items)
    sent = {uid for uid, _ in items}
    assert first.stored == sent and not first.failed
    assert second.stored == sent and not second.failed
    found = rig.cloud.find_instances(_study_uid(items[0][1]))
    assert sorted(f.sop_instance_uid for f in found) == sorted(sent)


def test_a_part_that_is_not_dicom_fails_alone(rig: Rig, tmp_path: Path) -> None:
    items = _study(tmp_path, 2)
    result = rig.cloud.store([items[0], ("1.2.3.999", b"not dicom at all"), items[1]])
    assert result.stored == {items[0][0], items[1][0]}
    assert set(result.failed) == {"1.2.3.999"}
    assert not result.failed["1.2.3.999"].transient


def test_an_unknown_study_has_no_instances(rig: Rig) -> None:
    assert rig.cloud.find_instances("1.2.826.0.1.3680043.99.1", ENCAPSULATED_PDF) == []


def test_a_report_instance_reads_back_with_its_markers_and_pdf(rig: Rig, tmp_path: Path) -> None:
    import io

    import pydicom

    items = _study(tmp_path, 1)
    header = pydicom.dcmread(io.BytesIO(items[0][1]), stop_before_pixels=True)
    pdf = minimal_pdf(["Certified translation", "odd length!"])
    report = build_report_instance(
        header, patient_name="TEST^BENCH", pdf=pdf, title="Radiology report (English)",
        language="en", role="translation", certified=True, translator="Jane Doe",
        series_number=901, provenance="contract test", station="kiosk-test")
    rig.cloud.store([(report.sop_instance_uid, report.data)])
    [found] = rig.cloud.find_instances(str(header.StudyInstanceUID), ENCAPSULATED_PDF)
    assert found.sop_instance_uid == report.sop_instance_uid
    markers = read_markers(rig.cloud.metadata(found))
    assert (markers.language, markers.role, markers.certified, markers.translator) == (
        "en", "translation", True, "Jane Doe")
    _ds, back = extract_pdf(rig.cloud.retrieve(found))
    assert back == pdf


def test_wrong_credentials_are_a_permanent_auth_error(rig: Rig) -> None:
    cloud = rig.with_wrong_password()
    with pytest.raises(CloudAuthError) as info:
        cloud.ping()
    assert not info.value.transient
    with pytest.raises(CloudAuthError):
        cloud.store([("1.2.3", b"x")])


def test_an_unreachable_server_is_a_transient_error(rig: Rig) -> None:
    with pytest.raises(CloudUnavailable) as info:
        rig.unreachable().ping()
    assert info.value.transient
