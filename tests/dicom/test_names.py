"""Patient-name decoding: pydicom's real charset files plus mislabelled Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import config, dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from kiosk.dicom.names import DecodedName, decode_person_name, display_name


def _charset_file(name: str) -> str:
    found = get_charset_files(name)
    if not found:
        pytest.skip(f"pydicom charset test file {name} not available")
    return found[0]


def _raw_name_and_charset(path: str | Path) -> tuple[bytes, object]:
    """The undecoded PatientName bytes and (0008,0005), as the importer sees them."""
    ds = dcmread(path, stop_before_pixels=True)
    raw = ds.get_item(0x00100010).value
    assert isinstance(raw, bytes)
    cs_elem = ds.get_item(0x00080005)
    charset = ds.SpecificCharacterSet if cs_elem is not None else None
    return raw, charset


# (file, stored, display) from pydicom's charset_files, all correctly labelled.
REAL_FILES = [
    ("chrX2.dcm", "Wang^XiaoDong=王^小东=", "Wang XiaoDong 王小东"),  # GB18030
    ("chrX1.dcm", "Wang^XiaoDong=王^小東=", "Wang XiaoDong 王小東"),  # ISO_IR 192
    ("chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada Tarou 山田太郎"),
    ("chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", "ﾔﾏﾀﾞ ﾀﾛｳ 山田太郎"),
    ("chrJapMulti.dcm", "やまだ^たろう", "やまだ たろう"),
    ("chrJapMultiExplicitIR6.dcm", "やまだ^たろう", "やまだ たろう"),
    ("chrKoreanMulti.dcm", "김희중", "김희중"),
    ("chrI2.dcm", "Hong^Gildong=洪^吉洞=홍^길동", "Hong Gildong 洪吉洞"),
    ("chrGerm.dcm", "Äneas^Rüdiger", "Äneas Rüdiger"),  # ISO_IR 100
    ("chrFren.dcm", "Buc^Jérôme", "Buc Jérôme"),
    ("chrRuss.dcm", "Люкceмбypг", "Люкceмбypг"),  # ISO_IR 144
    ("chrGreek.dcm", "Διονυσιος", "Διονυσιος"),
    ("chrHbrw.dcm", "שרון^דבורה", "שרון דבורה"),
    ("chrArab.dcm", "قباني^لنزار", "قباني لنزار"),
]


@pytest.mark.parametrize(("name", "stored", "display"), REAL_FILES)
def test_pydicom_charset_files(name: str, stored: str, display: str) -> None:
    raw, charset = _raw_name_and_charset(_charset_file(name))
    result = decode_person_name(raw, charset)
    assert result == DecodedName(stored=stored, display=display, warning=None)


def test_gb18030_matches_pydicom_person_name() -> None:
    # Our decoding must agree with pydicom's own PN decoding of the dataset.
    path = _charset_file("chrX2.dcm")
    ds = dcmread(path, stop_before_pixels=True)
    raw, charset = _raw_name_and_charset(path)
    assert charset == "GB18030"
    result = decode_person_name(raw, charset)
    assert result.stored.split("=")[1] == ds.PatientName.ideographic == "王^小东"


def test_charset_as_raw_backslash_string() -> None:
    raw, _ = _raw_name_and_charset(_charset_file("chrH31.dcm"))
    assert decode_person_name(raw, "\\ISO 2022 IR 87").display == "Yamada Tarou 山田太郎"


# DICOM PS3.5 Annex K.2 example: "Zhang^XiaoDong=张^小东=" in ISO 2022 IR 58.
IR58_RAW = bytes.fromhex(
    "5A68616E675E5869616F446F6E673D1B242941D5C55E1B242941D0A1B6AB3D20"
)


def test_iso_2022_ir_58_multibyte() -> None:
    result = decode_person_name(IR58_RAW, ["", "ISO 2022 IR 58"])
    # pydicom 3.0.2 leaves the ESC $ ) A designators in its decoded text;
    # they must not reach the screen or reports.
    assert result.stored == "Zhang^XiaoDong=张^小东="
    assert result.display == "Zhang XiaoDong 张小东"
    assert result.warning is None


def _file_with_name(tmp_path: Path, raw: bytes, charset: str | None) -> Path:
    """A real DICOM file whose PatientName bytes are `raw` (charset as given)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.3.4"
    if len(raw) % 2:
        raw += b" "
    ds.add_new(0x00100010, "PN", raw)
    ds.PatientID = "X1"
    path = tmp_path / "name.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_gbk_labelled_iso_ir_100_from_file(tmp_path: Path) -> None:
    path = _file_with_name(tmp_path, "Li^Hua=李^华=".encode("gbk"), "ISO_IR 100")
    raw, charset = _raw_name_and_charset(path)
    # What pydicom shows as declared: Latin-1 mojibake.
    assert str(dcmread(path).PatientName).startswith("Li^Hua=À")
    result = decode_person_name(raw, charset)
    assert result.stored == "Li^Hua=李^华="
    assert result.display == "Li Hua 李华"
    assert result.warning is not None
    assert "GB18030/GBK" in result.warning and "ISO_IR 100" in result.warning
    assert "unchanged" in result.warning
    # The file itself is untouched by decoding.
    assert dcmread(path).get_item(0x00100010).value == raw


def test_unlabelled_gbk_from_file(tmp_path: Path) -> None:
    path = _file_with_name(tmp_path, "王^小东".encode("gbk"), None)
    raw, charset = _raw_name_and_charset(path)
    assert charset is None
    result = decode_person_name(raw, charset)
    assert result.stored == "王^小东"
    assert result.display == "王小东"
    assert result.warning is not None
    assert "GB18030/GBK" in result.warning
    assert "no Specific Character Set" in result.warning


@pytest.mark.parametrize("charset", [None, "", "ISO_IR 6", "ISO_IR 100", ["", "ISO_IR 100"]])
@pytest.mark.parametrize("name", ["李^华", "欧阳^娜娜", "张^喆", "Li^Hua=李^华=", "约翰·史密斯"])
def test_gb18030_mislabel_variants(charset: object, name: str) -> None:
    for codec in ("gbk", "gb18030"):
        result = decode_person_name(name.encode(codec), charset)  # type: ignore[arg-type]
        assert result.stored == name
        assert result.warning is not None and "GB18030" in result.warning


@pytest.mark.parametrize(
    "name",
    [
        "Müller^Jürgen",
        "José^García",
        "François^Lefèvre",
        "Nuñez^Iñaki",
        "Ångström^Ærø",
        "Øster^Åse",
        "Ébert^Zoë",
    ],
)
def test_genuine_latin1_not_misdetected(name: str) -> None:
    result = decode_person_name(name.encode("latin-1"), "ISO_IR 100")
    assert result == DecodedName(name, name.replace("^", " "), None)


def test_unlabelled_latin1_is_latin1_with_warning() -> None:
    result = decode_person_name("Müller^Jürgen".encode("latin-1"), None)
    assert result.stored == "Müller^Jürgen"
    assert result.warning is not None and "Latin-1" in result.warning


def test_utf8_labelled_latin1_is_detected() -> None:
    # UTF-8 Chinese also decodes as (wrong) GB18030, so UTF-8 is tried first.
    result = decode_person_name("Li^Hua=李^华=".encode(), "ISO_IR 100")
    assert result.display == "Li Hua 李华"
    assert result.warning is not None and "UTF-8" in result.warning


def test_gbk_labelled_utf8_is_detected() -> None:
    with pytest.warns(UserWarning):  # pydicom's own complaint about the bytes
        result = decode_person_name("李^华".encode("gbk"), "ISO_IR 192")
    assert result.display == "李华"
    assert result.warning is not None and "ISO_IR 192" in result.warning


def test_plain_ascii() -> None:
    assert decode_person_name(b"DOE^JOHN ", None) == DecodedName("DOE^JOHN", "DOE JOHN", None)
    assert decode_person_name(b"", None) == DecodedName("", "", None)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("raw", "charset"),
    [
        (b"\xff\xfe\x00\x81garbage\x1b$B\x80", "ISO_IR 192"),
        (b"\xff\xfe\x81", "GB18030"),
        (b"\x1b$)C\xff\xff^\x1b(B", ["", "ISO 2022 IR 149"]),
        (b"\x1b%G\xe4\xb8", ["", "ISO 2022 IR 87"]),  # escape for an undeclared set
        (b"abc", "NOT A CHARSET"),
    ],
)
def test_garbage_never_raises(raw: bytes, charset: object) -> None:
    result = decode_person_name(raw, charset)  # type: ignore[arg-type]
    assert isinstance(result.stored, str)
    assert result.warning is not None
    assert "\x1b" not in result.display


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_garbage_in_strict_pydicom_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # With reading_validation_mode RAISE pydicom raises instead of replacing.
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.RAISE)
    result = decode_person_name(b"\xff\xfe\x81abc", "ISO_IR 192")
    assert result.warning is not None
    result = decode_person_name(b"abc", "NOT A CHARSET")
    assert result.stored == "abc"


CHARSETS = st.sampled_from(
    [None, "", "ISO_IR 100", "ISO_IR 192", "GB18030", "GBK", ["", "ISO 2022 IR 58"],
     ["", "ISO 2022 IR 87"], ["", "ISO 2022 IR 149"], "ISO_IR 144", "bogus"]
)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64), charset=CHARSETS)
def test_any_bytes_any_charset_never_raise(raw: bytes, charset: object) -> None:
    result = decode_person_name(raw, charset)  # type: ignore[arg-type]
    assert isinstance(result.stored, str) and isinstance(result.display, str)
    assert not any(ord(c) < 0x20 for c in result.display)


@pytest.mark.parametrize(
    ("pn", "expected"),
    [
        ("Wang^XiaoDong=王^小东=", "Wang XiaoDong 王小东"),
        ("WANG^XiaoDong=王^小東", "WANG XiaoDong 王小東"),
        ("Li^Hua", "Li Hua"),
        ("=王^小东", "王小东"),
        ("李^华", "李华"),
        ("==やまだ^たろう", "やまだ たろう"),
        ("Smith^John^Paul^Dr^Jr", "Smith John Paul Dr Jr"),
        ("Smith^^^^", "Smith"),
        ("  Wang ^  Xiao  Dong", "Wang Xiao Dong"),
        ("Doe^Jane\\Roe^Richard", "Doe Jane; Roe Richard"),
        ("", ""),
        ("=", ""),
        ("^^", ""),
    ],
)
def test_display_name(pn: str, expected: str) -> None:
    assert display_name(pn) == expected
