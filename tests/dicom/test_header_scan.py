"""The fast header scan gives exactly pydicom's header, or leaves the file to pydicom.

``kiosk.dicom.header_scan`` reads the common case (Part 10, explicit VR little endian, natively or
encapsulated) with ``struct``; ``kiosk.dicom.instance.read_header`` is the pydicom path. Wherever
the scan returns a header it must equal pydicom's, field for field, ``pixel_offset`` included; where
it declines, pydicom decides. It must never raise.
"""

from __future__ import annotations

import copy
import io
import tempfile
from functools import cache
from pathlib import Path

import pydicom.config
import pydicom.data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from kiosk.dicom import header_scan
from kiosk.dicom import instance as dicomfile
from kiosk.dicom.instance import (
    SCAN_BYTES,
    InstanceHeader,
    NotReadable,
    parse_header,
    read_header,
    scan_header,
)
from kiosk.samples.bulk import write_study
from kiosk.samples.sample_disc import build_sample_disc
from tests.conftest import make_instance

PYDICOM_DATA = Path(pydicom.data.__file__).parent
CORPUS = sorted(
    p for sub in ("test_files", "charset_files") for p in (PYDICOM_DATA / sub).rglob("*")
    if p.is_file()
)
PIXEL_TAG = b"\xe0\x7f\x10\x00"


def _pydicom(data: bytes) -> InstanceHeader | str:
    try:
        return read_header(io.BytesIO(data), force=False)
    except NotReadable as exc:
        return f"NotReadable: {exc}"


def _fast(data: bytes) -> InstanceHeader | None:
    return scan_header(io.BytesIO(data))


def _same_or_declined(data: bytes) -> bool:
    """Assert the fast path agrees with pydicom; return whether it took the file."""
    fast = _fast(data)
    if fast is None:
        return False
    assert fast == _pydicom(data)
    return True


def _encode(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds = copy.deepcopy(ds)
    if UID(transfer_syntax).is_encapsulated and "PixelData" in ds:
        ds.PixelData = encapsulate([b"\0" * 8, b"\1" * 8])  # fragments, not a real RLE stream
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    fds = FileDataset("x", ds, file_meta=meta, preamble=b"\0" * 128)
    out = io.BytesIO()
    fds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _ct(**extra: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.PatientName = "DOE^JANE"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = 16
    ds.PhotometricInterpretation = "MONOCHROME2"
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = b"\0" * 32
    return ds


def _undefined_sequence(ds: Dataset, keyword: str, items: list[Dataset],
                        defined_items: int = 0) -> None:
    """Add a sequence of undefined length whose first items have undefined length too."""
    for item in items[:len(items) - defined_items]:
        item.is_undefined_length_sequence_item = True
    setattr(ds, keyword, Sequence(items))
    ds[keyword].is_undefined_length = True


def _nested_sequences() -> Dataset:
    inner = Dataset()
    inner.CodeValue = "T-D3000"
    inner.CodeMeaning = "Chest"
    _undefined_sequence(inner, "ConceptNameCodeSequence", [Dataset(), Dataset()])  # empty items
    item_a = Dataset()
    item_a.ReferencedSOPClassUID = CTImageStorage
    item_a.ReferencedSOPInstanceUID = generate_uid()
    _undefined_sequence(item_a, "AnatomicRegionSequence", [inner])
    item_b = Dataset()  # a defined length item inside the undefined length sequence
    item_b.SpecificCharacterSet = "ISO_IR 192"
    item_b.ReferencedSOPInstanceUID = generate_uid()
    _undefined_sequence(item_b, "ReferencedSeriesSequence", [Dataset()])
    icon = Dataset()  # pixel data inside an item is not where dcmread stops
    icon.Rows = icon.Columns = 2
    icon.BitsAllocated = 16
    icon.PixelData = b"\1\2\3\4\5\6\7\x08"
    ds = _ct(StudyDescription="Thorax", SeriesDescription="Axial 1mm")
    _undefined_sequence(ds, "ReferencedImageSequence", [item_a, item_b], defined_items=1)
    ds.IconImageSequence = Sequence([icon])  # defined length: jumped over
    ds.add_new(0x00091010, "LO", "ACME")  # private creator
    ds.add_new(0x00091011, "OB", b"\0" * 300)
    return ds


# --- the table agrees with pydicom's dictionary ------------------------------------------------

def test_field_table_matches_the_pydicom_dictionary() -> None:
    for keyword, (tag, vr) in header_scan.FIELDS.items():
        assert keyword_for_tag(tag) == keyword
        assert dictionary_VR(tag) == vr.decode()
    for keyword, tag in header_scan.META_FIELDS.items():
        assert keyword_for_tag(tag) == keyword
        assert dictionary_VR(tag) == "UI"


def test_every_keyword_the_header_reads_is_scanned() -> None:
    asked: set[str] = set()

    def get(keyword: str, default: object = None) -> object:
        asked.add(keyword)
        return default

    dicomfile._build_header(get, get, patient_name_raw=b"", charset=None, transfer_syntax="",
                            pixel_offset=0)
    scanned = set(header_scan.FIELDS) | set(header_scan.META_FIELDS)
    assert asked <= scanned
    assert scanned - asked == {"SpecificCharacterSet", "PatientName", "TransferSyntaxUID"}


# --- pydicom's own test files ------------------------------------------------------------------

@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.relative_to(PYDICOM_DATA).as_posix())
def test_pydicom_test_files(path: Path) -> None:
    _same_or_declined(path.read_bytes())


def test_the_scan_takes_the_common_pydicom_files_and_declines_the_rest() -> None:
    taken = {p.relative_to(PYDICOM_DATA).as_posix() for p in CORPUS
             if _fast(p.read_bytes()) is not None}
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
                 "MR_small_jpeg_ls_lossless.dcm", "JPEG-lossy.dcm", "SC_rgb_rle_2frame.dcm",
                 "MR_truncated.dcm", "dicomdirtests/DICOMDIR", "dicomdirtests/77654033/CT2/17136",
                 "chrH31.dcm", "chrJapMulti.dcm", "chrSQEncoding.dcm", "chrX1.dcm", "chrI2.dcm",
                 "image_dfl.dcm"):  # the last: deflated, scanned once inflated
        prefix = "charset_files/" if name.startswith("chr") else "test_files/"
        assert prefix + name in taken
    for name in ("MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                 "no_meta.dcm", "SC_rgb_jpeg.dcm"):  # the last: implicit VR under a JPEG syntax
        assert "test_files/" + name not in taken
    assert len(taken) >= 140


# --- the kiosk's own files ---------------------------------------------------------------------

def test_sample_disc(tmp_path: Path) -> None:
    disc = build_sample_disc(tmp_path / "CDROM", ct_slices=3, size=32)
    instances = sorted(p for p in disc.root.glob("PT*/ST*/SE*/IM*") if p.is_file())
    assert len(instances) == 5
    for path in [*instances, disc.root / "DICOMDIR"]:
        assert _same_or_declined(path.read_bytes()), path


def test_a_512_ct_takes_the_fast_path_from_memory_and_from_the_staged_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_study(tmp_path / "study", instances=2, rows=512, columns=512)
    data = paths[1].read_bytes()
    assert len(data) > SCAN_BYTES
    slow = _pydicom(data)
    assert isinstance(slow, InstanceHeader) and slow.rows == slow.columns == 512
    assert data[slow.pixel_offset:slow.pixel_offset + 4] == PIXEL_TAG
    assert _fast(data) == slow
    with open(paths[1], "rb") as fp:  # as files over HEAD_BYTES are: from the staged copy
        assert scan_header(fp) == slow
        assert fp.tell() == slow.pixel_offset
    # parse_header must not need pydicom for it (a regression to always-fallback fails here).
    def no_pydicom(fp: object, *, force: bool) -> InstanceHeader:
        raise AssertionError("fell back to pydicom")

    monkeypatch.setattr(dicomfile, "read_header", no_pydicom)
    assert parse_header(io.BytesIO(data), force=False) == slow
    with open(paths[1], "rb") as fp:
        assert parse_header(fp, force=False) == slow


@pytest.mark.parametrize("kwargs", [
    {},
    {"charset": "ISO_IR 100", "patient_name": "Müller^Jürgen"},
    {"charset": "ISO_IR 192", "patient_name": "李^华"},
    {"charset": "GB18030", "patient_name": "李^华".encode("gb18030")},
    {"patient_name": "王小东".encode("gbk")},  # mislabelled: no charset at all
    {"charset": "ISO_IR 100", "patient_name": "李华".encode("gbk")},
    {"charset": ["", "ISO 2022 IR 87"],
     "patient_name": b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B="},
    {"patient_name": b"ODD^LEN"},  # padded to even length with a space: kept as is
    {"patient_name": ""},
    {"rows": 3, "columns": 5, "modality": "MR", "patient_id": "  ID with spaces  "},
], ids=repr)
def test_make_instance_variants(tmp_path: Path, kwargs: dict[str, object]) -> None:
    path = tmp_path / "IM1"
    make_instance(path, **kwargs)  # type: ignore[arg-type]
    assert _same_or_declined(path.read_bytes())


def test_files_without_a_preamble_are_left_to_pydicom(tmp_path: Path) -> None:
    path = tmp_path / "IM1"
    make_instance(path, preamble=False)
    data = path.read_bytes()
    assert _fast(data) is None
    assert parse_header(io.BytesIO(data), force=True).sop_instance_uid


# --- hand-made headers: charsets, multiple values, sequences, sizes ----------------------------

@pytest.mark.parametrize("ds", [
    _ct(SpecificCharacterSet="GB18030", StudyDescription="胸部平扫", SeriesDescription="Thorax"),
    _ct(SpecificCharacterSet="ISO_IR 192", StudyDescription="胸部 CT", PatientID="ÄÖÜ"),
    _ct(SpecificCharacterSet="ISO_IR 100", StudyDescription="Thorax\\Abdomen",
        Modality=["CT", "PT"], PatientSex="F", PatientBirthDate="19800101"),
    _ct(SpecificCharacterSet=["", "ISO 2022 IR 149"], StudyDescription="흉부 CT"),
    _ct(SpecificCharacterSet=["", "ISO 2022 IR 87"], SeriesDescription="胸部^単純"),
    _ct(SpecificCharacterSet="ISO_IR 101"),  # Latin-2, no non-ASCII text
    _ct(SpecificCharacterSet="NOT A CHARSET", StudyDescription="Thorax"),
    _ct(SpecificCharacterSet=""),
    _ct(SeriesNumber="  12", InstanceNumber="+7", NumberOfFrames="1"),
    _ct(SeriesNumber="", InstanceNumber=None, StudyDescription="", StudyDate=""),
    _ct(SeriesNumber="1.0"),  # pydicom: an ISfloat, int() 1 — the scan leaves it to pydicom
    _ct(SeriesNumber="1\\2"),
    _nested_sequences(),
], ids=lambda ds: repr(ds.get("SpecificCharacterSet")) + repr(ds.get("StudyDescription")))
def test_hand_made_headers(ds: Dataset) -> None:
    for ts in (ExplicitVRLittleEndian, RLELossless):
        _same_or_declined(_encode(ds, ts))


def test_multiple_values_are_joined_with_backslashes_on_both_paths() -> None:
    data = _encode(_ct(StudyDescription="Thorax \\Abdomen", Modality=["CT", "PT"]))
    fast = _fast(data)
    assert fast is not None and fast == _pydicom(data)
    assert fast.study_description == "Thorax\\Abdomen"  # each LO value is right-stripped
    assert fast.modality == "CT\\PT"


def test_undefined_length_sequences_are_walked() -> None:
    data = _encode(_nested_sequences())
    assert b"\xfe\xff\xdd\xe0" in data and b"\xfe\xff\x0d\xe0" in data  # delimiters written
    assert _same_or_declined(data)


def test_text_is_decoded_with_the_character_set() -> None:
    for charset, text in (("GB18030", "胸部平扫"), (["", "ISO 2022 IR 149"], "흉부 CT"),
                          ("ISO_IR 192", "Thorax ÄÖÜ 胸部")):
        data = _encode(_ct(SpecificCharacterSet=charset, StudyDescription=text))
        assert text.encode("utf-8") not in data or charset == "ISO_IR 192"
        fast = _fast(data)
        assert fast is not None and fast == _pydicom(data)
        assert fast.study_description == text


def test_no_pixel_data_ends_at_the_end_of_the_file() -> None:
    ds = _ct()
    del ds.PixelData
    data = _encode(ds)
    fast = _fast(data)
    assert fast is not None and fast == _pydicom(data)
    assert fast.pixel_offset == len(data)
    assert _fast(data + b"\0\0\0") is None  # trailing bytes that are not an element: pydicom


def test_a_header_past_the_first_read_is_scanned_again_then_left_to_pydicom() -> None:
    ds = _ct()
    ds.add_new(0x00091010, "LO", "ACME")
    ds.add_new(0x00091011, "OB", b"\1" * 200_000)  # a large private block before the pixels
    data = _encode(ds)
    first = header_scan.scan(data[:SCAN_BYTES], complete=False)
    assert isinstance(first, header_scan.Fallback) and first.need_more
    assert _same_or_declined(data)
    ds.add_new(0x00091011, "OB", b"\1" * 2_000_000)
    data = _encode(ds)
    assert _fast(data) is None
    assert isinstance(_pydicom(data), InstanceHeader)


def _duplicate_modality(data: bytes) -> bytes:
    element = b"\x08\x00\x60\x00CS\x02\x00CT"
    return data.replace(element, element + b"\x08\x00\x60\x00CS\x02\x00MR")


def _unknown_private_vr(data: bytes) -> bytes:
    element = b"\x08\x00\x60\x00CS\x02\x00CT"
    return data.replace(element, element + b"\x09\x00\x10\x00ZZ\x02\x00AB")


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: _encode(_ct(Rows=[4, 4])), "Rows does not hold exactly one US value"),
    (lambda: _encode(_ct(SpecificCharacterSet="ISO_IR 192")).replace(
        b"DOE^JANE", b"D\xffE^JANE"), None),  # PN stays raw bytes: still the fast path
    (lambda: _encode(_ct(SpecificCharacterSet="ISO_IR 192", StudyDescription="ab")).replace(
        b"\x30\x10LO\x02\x00ab", b"\x30\x10LO\x02\x00a\xff"),
     "text does not decode with its character set"),
    (lambda: _encode(_ct()).replace(b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00SH"),
     "Modality has VR SH, not CS"),
    (lambda: _duplicate_modality(_encode(_ct())), "element (0008,0060) out of order"),
    (lambda: _unknown_private_vr(_encode(_ct())), "unknown VR"),
    (lambda: _encode(_ct(), ImplicitVRLittleEndian),
     "transfer syntax 1.2.840.10008.1.2 is not explicit VR little endian"),
], ids=["US x2", "PN bytes", "bad UTF-8", "wrong VR", "duplicate", "unknown VR", "implicit"])
def test_surprises_are_left_to_pydicom(make: object, reason: str | None) -> None:
    data = make()  # type: ignore[operator]
    result = header_scan.scan(data, complete=True)
    if reason is None:
        assert isinstance(result, header_scan.Scan)
        assert _same_or_declined(data)
        return
    assert isinstance(result, header_scan.Fallback)
    assert result.reason.startswith(reason)
    assert _fast(data) is None
    assert isinstance(_pydicom(data), InstanceHeader)  # pydicom reads them all, its own way


def test_other_transfer_syntaxes_are_left_to_pydicom() -> None:
    assert _fast(_encode(_ct(), ImplicitVRLittleEndian)) is None


def test_a_non_default_pydicom_configuration_is_left_to_pydicom(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(_ct())
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.RAISE)
    assert isinstance(header_scan.scan(data, complete=True), header_scan.Fallback)
    assert _fast(data) is None


# --- mutated and truncated files ---------------------------------------------------------------

@cache
def _seeds() -> tuple[bytes, ...]:
    seeds = [
        _encode(_nested_sequences()),
        _encode(_ct(SpecificCharacterSet=["", "ISO 2022 IR 87"], StudyDescription="A\\B  ",
                    SeriesNumber="  3", NumberOfFrames="1"), RLELossless),
        (PYDICOM_DATA / "test_files" / "CT_small.dcm").read_bytes(),
        (PYDICOM_DATA / "test_files" / "JPEG2000.dcm").read_bytes(),
        (PYDICOM_DATA / "charset_files" / "chrSQEncoding.dcm").read_bytes(),
        (PYDICOM_DATA / "charset_files" / "chrH32.dcm").read_bytes(),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "IM1"
        make_instance(path, charset="GB18030", patient_name="李^华".encode("gb18030"))
        seeds.append(path.read_bytes())
    return tuple(seeds)


def _header_end(data: bytes) -> int:
    found = data.find(PIXEL_TAG, 132)
    return len(data) if found < 0 else found + 12


_MUTATION = st.tuples(
    st.sampled_from(["truncate", "overwrite", "insert", "delete", "length"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.binary(min_size=1, max_size=4),
)


def _mutate(data: bytes, kind: str, where: float, blob: bytes) -> bytes:
    # Aim at the header, where the scan works; the pixel data itself is never read.
    i = 128 + int(where * (_header_end(data) - 128))
    if kind == "truncate":
        return data[:i]
    if kind == "overwrite":
        return data[:i] + blob + data[i + len(blob):]
    if kind == "insert":
        return data[:i] + blob + data[i:]
    if kind == "delete":
        return data[:i] + data[i + len(blob):]
    # "length": set the 16-bit length of the element at the next tag-looking position
    j = data.find(b"\x00", i)
    if j < 0 or j + 2 > len(data):
        return data
    return data[:j] + (blob * 2)[:2] + data[j + 2:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=6), mutations=st.lists(_MUTATION, max_size=3),
       cut=st.one_of(st.none(), st.integers(min_value=0, max_value=4096)))
def test_mutated_files_are_read_like_pydicom_or_declined(
        seed: int, mutations: list[tuple[str, float, bytes]], cut: int | None) -> None:
    data = _seeds()[seed]
    for kind, where, blob in mutations:
        data = _mutate(data, kind, where, blob)
    # The scan itself never raises, on the whole file or on a prefix of it.
    result = header_scan.scan(data, complete=True)
    assert isinstance(result, header_scan.Scan | header_scan.Fallback)
    if cut is not None and cut < len(data):
        partial = header_scan.scan(data[:cut], complete=False)
        assert isinstance(partial, header_scan.Scan | header_scan.Fallback)
        if isinstance(partial, header_scan.Scan):
            assert isinstance(result, header_scan.Scan)
            assert partial == result
    fast = _fast(data)
    assert (fast is None) == isinstance(result, header_scan.Fallback)
    if fast is not None:
        assert fast == _pydicom(data)


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=600))
def test_junk_after_the_prefix_never_raises(junk: bytes) -> None:
    data = b"\0" * 128 + b"DICM" + junk
    for complete in (True, False):
        result = header_scan.scan(data, complete=complete)
        assert isinstance(result, header_scan.Scan | header_scan.Fallback)
    fast = _fast(data)
    if fast is not None:
        assert fast == _pydicom(data)


def test_a_dcmread_of_the_same_bytes_agrees_on_the_pixel_offset() -> None:
    # What pixel_offset means: where dcmread(stop_before_pixels=True) leaves the file.
    data = _seeds()[0]
    fp = io.BytesIO(data)
    dcmread(fp, stop_before_pixels=True)
    fast = _fast(data)
    assert fast is not None and fast.pixel_offset == fp.tell()
