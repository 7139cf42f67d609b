"""Zip archives on a medium read as its files: ArchiveSource over folders and ISO images.

Archives are made here with Python's zipfile and with 7-Zip (ZipCrypto and AES-256, as hospital
tools make them), around pydicom's own test files; hostile ones are laid out byte by byte
(tests/sources/zip_kit.py). Every limit and every kind of bad archive is fed and asserted.
"""

from __future__ import annotations

import io
import stat
import subprocess
import time
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from kiosk.errors import ArchiveReadError, SourceReadError
from kiosk.sources.archive import ArchiveListing, ArchiveSource
from kiosk.sources.directory import DirectorySource
from kiosk.sources.iso import IsoSource
from kiosk.sources.scan_limits import ScanLimits
from kiosk.sources.source import Entry, EntryKind
from kiosk.sources.zip_format import (
    data_offset,
    looks_like_zip,
    member_path,
    read_central_directory,
)
from kiosk.sources.zip_member import MemberReader
from tests.media_fixtures import need_tools
from tests.sources.zip_kit import (
    DICOM_FILES,
    RawMember,
    deflated,
    dicom_bytes,
    raw_zip,
    seven_zip,
    tree_of,
    zipcrypto,
)

CT, MR, PLAN = (dicom_bytes(n) for n in DICOM_FILES[:3])


def _medium(tmp_path: Path, files: dict[str, bytes]) -> Path:
    return tree_of(tmp_path / "medium", files)


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _read(source: ArchiveSource, path: str) -> bytes:
    with source.open(path) as fh:
        return fh.read()


def _entry(source: ArchiveSource, path: str) -> Entry:
    return next(e for e in source.entries() if e.path == path)


def _expand(source: ArchiveSource, path: str) -> ArchiveListing:
    return source.expand(_entry(source, path))


def _files(listing: ArchiveListing) -> dict[str, Entry]:
    return {e.path: e for e in listing.members}


def _reasons(listing: ArchiveListing) -> dict[str, str]:
    return {r["path"]: r["reason"] for r in listing.refused}


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                         zipfile.ZIP_BZIP2])
def test_members_stream_out_bit_exact_stored_deflated_bzip2(tmp_path: Path,
                                                           compression: int) -> None:
    archive = _zip({"DICOM/ST1/CT1": CT, "DICOM/ST1/MR1": MR, "readme.txt": b"hello"},
                   compression)
    root = _medium(tmp_path, {"STUDY.zip": archive, "loose.dcm": PLAN})
    source = ArchiveSource(DirectorySource(root))
    # The medium's own listing is unchanged: archives open when the importer asks.
    assert sorted(e.path for e in source.entries()) == ["STUDY.zip", "loose.dcm"]
    listing = _expand(source, "STUDY.zip")
    assert set(_files(listing)) == {"STUDY.zip!/DICOM/ST1/CT1", "STUDY.zip!/DICOM/ST1/MR1",
                                    "STUDY.zip!/readme.txt"}
    assert _read(source, "STUDY.zip!/DICOM/ST1/CT1") == CT
    assert _read(source, "STUDY.zip!/DICOM/ST1/MR1") == MR
    assert _files(listing)["STUDY.zip!/DICOM/ST1/CT1"].size == len(CT)
    assert listing.record == {"path": "STUDY.zip", "members": 3, "imported": 0, "encrypted": 0,
                              "locked": 0, "problem": None, "code": None}
    assert listing.refused == []
    assert _read(source, "loose.dcm") == PLAN  # the medium's files open as before
    source.close()


def test_an_archive_is_known_by_its_first_bytes_not_its_name() -> None:
    archive = _zip({"a": CT})
    assert looks_like_zip(archive[:132])
    assert looks_like_zip(_zip({})[:132])  # an empty archive is just its end record
    assert not looks_like_zip(b"Nothing here, though the file is called x.zip")
    assert not looks_like_zip(CT[:132])


def test_members_read_in_small_pieces_match(tmp_path: Path) -> None:
    big = bytes(range(256)) * 8000 + CT  # 2 MB: several pieces, and a partial last one
    root = _medium(tmp_path, {"a.zip": _zip({"big": big})})
    source = ArchiveSource(DirectorySource(root))
    _expand(source, "a.zip")
    out = bytearray()
    with source.open("a.zip!/big") as fh:
        while chunk := fh.read(7777):
            out += chunk
    assert bytes(out) == big


@pytest.mark.parametrize("encryption", ["ZipCrypto", "AES256"])
@pytest.mark.parametrize("method", ["Deflate", "Copy"])
def test_7zip_encrypted_members_open_with_the_password(tmp_path: Path, encryption: str,
                                                       method: str) -> None:
    tree = tree_of(tmp_path / "tree", {"IMG/CT": CT, "IMG/MR": MR})
    root = tmp_path / "medium"
    root.mkdir()
    seven_zip(root / "cloud.zip", tree, password="19800131", encryption=encryption,
              method=method)
    source = ArchiveSource(DirectorySource(root), password="19800131")
    listing = _expand(source, "cloud.zip")
    assert listing.record["encrypted"] == 2 and listing.record["locked"] == 0
    assert listing.record["problem"] is None
    assert _read(source, "cloud.zip!/IMG/CT") == CT
    assert _read(source, "cloud.zip!/IMG/MR") == MR


@pytest.mark.parametrize("encryption", ["ZipCrypto", "AES256"])
def test_without_the_password_encrypted_members_are_locked_and_the_rest_read(
        tmp_path: Path, encryption: str) -> None:
    tree = tree_of(tmp_path / "tree", {"CT": CT})
    root = tmp_path / "medium"
    root.mkdir()
    archive = seven_zip(root / "mixed.zip", tree, password="pw", encryption=encryption)
    with zipfile.ZipFile(archive, "a") as z:  # one plain member beside the encrypted one
        z.writestr("MR", MR)
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "mixed.zip")
    assert listing.record["code"] == "password_needed"
    assert listing.record["encrypted"] == 1 and listing.record["locked"] == 1
    assert "--archive-password" in listing.record["problem"]
    assert "password is needed" in _reasons(listing)["mixed.zip!/CT"]
    assert list(_files(listing)) == ["mixed.zip!/MR"]
    assert _read(source, "mixed.zip!/MR") == MR


@pytest.mark.parametrize("encryption", ["ZipCrypto", "AES256"])
def test_a_wrong_password_is_a_clear_message_never_a_crash(tmp_path: Path,
                                                           encryption: str) -> None:
    tree = tree_of(tmp_path / "tree", {"CT": CT, "MR": MR, "PLAN": PLAN})
    root = tmp_path / "medium"
    root.mkdir()
    seven_zip(root / "c.zip", tree, password="19800131", encryption=encryption)
    source = ArchiveSource(DirectorySource(root), password="19800113")
    listing = _expand(source, "c.zip")
    assert listing.record["code"] == "password_wrong"
    assert listing.record["locked"] == 3 and listing.members == []
    assert "does not open" in listing.record["problem"]
    assert all("password does not open" in r for r in _reasons(listing).values())
    # Opened anyway with the wrong password, the member says so too.
    data = _Counting((root / "c.zip").read_bytes())
    member = read_central_directory(data, 10)[0]
    with pytest.raises(ArchiveReadError) as caught:
        MemberReader(data, member, data_offset(data, member), b"19800113")
    assert caught.value.code == "password_wrong"
    assert "birth date" in caught.value.text


def test_a_tampered_aes_member_fails_its_hmac(tmp_path: Path) -> None:
    tree = tree_of(tmp_path / "tree", {"CT": CT})
    root = tmp_path / "medium"
    root.mkdir()
    archive = seven_zip(root / "a.zip", tree, password="pw", encryption="AES256",
                        method="Copy")
    raw = bytearray(archive.read_bytes())
    raw[raw.index(b"CT") + 2 + 11 + 16 + 2 + 5000] ^= 0x01  # a ciphertext byte, mid-file
    archive.write_bytes(bytes(raw))
    source = ArchiveSource(DirectorySource(root), password="pw")
    _expand(source, "a.zip")
    with pytest.raises(ArchiveReadError) as caught:
        _read(source, "a.zip!/CT")
    assert caught.value.code == "damaged" and "HMAC" in caught.value.text


def test_a_damaged_member_fails_its_crc(tmp_path: Path) -> None:
    raw = bytearray(_zip({"CT": CT}, zipfile.ZIP_STORED))
    raw[raw.index(b"CT") + 2 + 3000] ^= 0xFF
    root = _medium(tmp_path, {"a.zip": bytes(raw)})
    source = ArchiveSource(DirectorySource(root))
    _expand(source, "a.zip")
    with pytest.raises(ArchiveReadError) as caught:
        _read(source, "a.zip!/CT")
    assert caught.value.code == "damaged" and "CRC" in caught.value.text


def test_an_archive_cut_off_is_one_clear_refusal(tmp_path: Path) -> None:
    archive = _zip({"CT": CT, "MR": MR})
    root = _medium(tmp_path, {"cut.zip": archive[: len(archive) // 2]})
    listing = _expand(ArchiveSource(DirectorySource(root)), "cut.zip")
    assert listing.record["code"] == "damaged"
    assert "download" in listing.record["problem"]
    assert listing.refused == [{"path": "cut.zip", "reason": listing.record["problem"]}]
    assert listing.members == []


def test_a_part_of_a_split_archive_is_refused_with_what_to_do(tmp_path: Path) -> None:
    raw = bytearray(_zip({"CT": CT}))
    eocd = raw.rindex(b"PK\x05\x06")
    raw[eocd + 4 : eocd + 6] = (2).to_bytes(2, "little")  # "this is disk 2"
    root = _medium(tmp_path, {"study.zip": bytes(raw)})
    listing = _expand(ArchiveSource(DirectorySource(root)), "study.zip")
    assert listing.record["code"] == "unsupported" and "7-Zip" in listing.record["problem"]


@pytest.mark.parametrize(("method", "readable"), [("BZip2", True), ("LZMA", False),
                                                  ("Deflate64", False)])
def test_compression_methods(tmp_path: Path, method: str, readable: bool) -> None:
    tree = tree_of(tmp_path / "tree", {"CT": CT})
    root = tmp_path / "medium"
    root.mkdir()
    seven_zip(root / "m.zip", tree, method=method)
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "m.zip")
    if readable:
        assert _read(source, "m.zip!/CT") == CT
    else:
        reason = _reasons(listing)["m.zip!/CT"]
        assert method in reason and "7-Zip" in reason


# --- limits ----------------------------------------------------------------------------------


def test_more_members_than_the_limit_refuse_the_archive(tmp_path: Path) -> None:
    root = _medium(tmp_path, {"many.zip": _zip({f"f{i}": b"x" for i in range(4)})})
    listing = _expand(ArchiveSource(DirectorySource(root),
                                    limits=ScanLimits(max_archive_members=3)), "many.zip")
    assert listing.record["code"] == "limit"
    assert "import.archive_max_members" in listing.record["problem"]
    assert listing.members == []


def test_a_central_directory_claiming_millions_costs_nothing(tmp_path: Path) -> None:
    archive = raw_zip([RawMember(b"CT", CT)], declared_count=0xFFFF)
    root = _medium(tmp_path, {"claims.zip": archive})
    started = time.monotonic()
    listing = _expand(ArchiveSource(DirectorySource(root),
                                    limits=ScanLimits(max_archive_members=1000)), "claims.zip")
    assert time.monotonic() - started < 0.5
    assert listing.record["code"] == "limit"


def test_records_past_the_limit_stop_the_parse(tmp_path: Path) -> None:
    # The end record says 1 member; the directory holds 50: counted as they are parsed.
    archive = raw_zip([RawMember(f"m{i}".encode(), b"x") for i in range(50)], declared_count=1)
    root = _medium(tmp_path, {"lies.zip": archive})
    listing = _expand(ArchiveSource(DirectorySource(root),
                                    limits=ScanLimits(max_archive_members=10)), "lies.zip")
    assert listing.record["code"] == "limit"


def test_members_adding_up_past_the_total_limit_refuse_the_archive(tmp_path: Path) -> None:
    root = _medium(tmp_path, {"big.zip": _zip({"CT": CT, "CT2": CT, "CT3": CT})})
    listing = _expand(ArchiveSource(DirectorySource(root),
                                    limits=ScanLimits(max_archive_bytes=100_000)), "big.zip")
    assert listing.record["code"] == "limit"
    assert "import.archive_max_bytes" in listing.record["problem"]
    assert listing.members == []


def test_a_member_past_the_file_limit_is_refused_the_others_read(tmp_path: Path) -> None:
    root = _medium(tmp_path, {"a.zip": _zip({"CT": CT, "MR": MR})})
    source = ArchiveSource(DirectorySource(root), limits=ScanLimits(max_file_bytes=20_000))
    listing = _expand(source, "a.zip")
    assert "import.max_file_bytes" in _reasons(listing)["a.zip!/CT"]
    assert list(_files(listing)) == ["a.zip!/MR"]
    assert _read(source, "a.zip!/MR") == MR


def test_a_member_claiming_a_bomb_ratio_is_refused_small_blank_ones_are_not(
        tmp_path: Path) -> None:
    bomb, blank = bytes(4 << 20), bytes(512 << 10)  # zeros deflate ~1000:1
    root = _medium(tmp_path, {"z.zip": _zip({"bomb": bomb, "blank": blank})})
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "z.zip")
    reason = _reasons(listing)["z.zip!/bomb"]
    assert "zip bomb" in reason and "import.archive_max_ratio" in reason
    assert list(_files(listing)) == ["z.zip!/blank"]  # under 1 MiB: no ratio limit
    assert _read(source, "z.zip!/blank") == blank


class _Counting:
    """The archive's bytes, counting what is read of them."""

    def __init__(self, data: bytes) -> None:
        self._data, self.size, self.read = data, len(data), 0

    def read_at(self, offset: int, n: int) -> bytes:
        self.read += n
        return self._data[offset : offset + n]


def test_a_member_giving_more_than_its_header_says_stops_there(tmp_path: Path) -> None:
    # A header that lies: 100 kB claimed, 8 MB stored (a zip bomb's trick against limits
    # checked on headers). Reading stops just past the claim, whatever is left.
    body = bytes(range(256)) * (8 << 12)
    archive = _Counting(raw_zip([RawMember(b"liar", body, size=100_000, crc=0)]))
    member = read_central_directory(archive, 10)[0]
    reader = MemberReader(archive, member, data_offset(archive, member), None)
    archive.read = 0
    with pytest.raises(ArchiveReadError) as caught:
        while reader.read(65536):
            pass
    assert caught.value.code == "bomb" and "more data than its header says" in caught.value.text
    assert archive.read <= 512 << 10  # of 8 MiB: the piece that passed the claim, no more


def test_a_deflate_bomb_with_an_honest_looking_ratio_stops_at_its_claim(
        tmp_path: Path) -> None:
    zeros = bytes(64 << 20)
    archive = raw_zip([RawMember(b"bomb", deflated(zeros), method=8, size=1000, plain=zeros)])
    root = _medium(tmp_path, {"b.zip": archive})
    source = ArchiveSource(DirectorySource(root))
    assert list(_files(_expand(source, "b.zip"))) == ["b.zip!/bomb"]  # 1000 B: no ratio check
    started = time.monotonic()
    with pytest.raises(ArchiveReadError) as caught:
        _read(source, "b.zip!/bomb")
    assert caught.value.code == "bomb"
    assert time.monotonic() - started < 1.0  # 64 MiB never inflated


def test_members_sharing_data_are_refused(tmp_path: Path) -> None:
    # The overlapping zip bomb: many directory records pointing at the same compressed data.
    archive = raw_zip([RawMember(b"CT", CT), RawMember(b"CT", CT, offset=0),
                       RawMember(b"again", CT, offset=0)])
    root = _medium(tmp_path, {"o.zip": archive})
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "o.zip")
    reasons = _reasons(listing)
    assert "overlaps" in reasons["o.zip!/again"]
    assert "same name" in reasons["o.zip!/CT"]  # the second "CT"
    assert list(_files(listing)) == ["o.zip!/CT"]
    assert _read(source, "o.zip!/CT") == CT


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "why"), [
    (b"../evil.dcm", "'..'"),
    (b"a/../../evil.dcm", "'..'"),
    (b"..\\..\\evil.dcm", "'..'"),
    (b"/etc/evil.dcm", "absolute"),
    (b"\\\\server\\share\\evil.dcm", "absolute"),
    (b"C:\\Windows\\evil.dcm", "drive"),
    (b"C:evil.dcm", "drive"),
    (b"x!/y.dcm", "'!/'"),
    (b"bell\x07.dcm", "control"),
])
def test_member_names_that_leave_the_archive_are_refused(tmp_path: Path, name: bytes,
                                                        why: str) -> None:
    archive = raw_zip([RawMember(name, CT), RawMember(b"good/MR", MR)])
    root = _medium(tmp_path, {"n.zip": archive})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "n.zip")
    assert [why in r for r in _reasons(listing).values()] == [True]
    assert list(_files(listing)) == ["n.zip!/good/MR"]
    assert _read(source, "n.zip!/good/MR") == MR
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def test_member_path_rules() -> None:
    assert member_path("DICOM\\ST1\\IM1") == ("DICOM/ST1/IM1", "")
    assert member_path("./a//b/") == ("a/b", "")
    assert member_path("/")[0] is None


def test_names_in_gbk_and_utf8_without_the_flag_are_read(tmp_path: Path) -> None:
    archive = raw_zip([RawMember("影像/张三.dcm".encode("gbk"), CT),
                       RawMember("报告.dcm".encode(), MR)])
    root = _medium(tmp_path, {"cn.zip": archive})
    source = ArchiveSource(DirectorySource(root))
    assert set(_files(_expand(source, "cn.zip"))) == {"cn.zip!/影像/张三.dcm", "cn.zip!/报告.dcm"}
    assert _read(source, "cn.zip!/影像/张三.dcm") == CT


def test_a_symlink_member_is_listed_never_followed(tmp_path: Path) -> None:
    link = RawMember(b"passwd", b"/etc/passwd", creator=3,
                     external_attr=(stat.S_IFLNK | 0o777) << 16)
    root = _medium(tmp_path, {"l.zip": raw_zip([link, RawMember(b"CT", CT)])})
    source = ArchiveSource(DirectorySource(root))
    listing = _expand(source, "l.zip")
    assert _files(listing)["l.zip!/passwd"].kind is EntryKind.SYMLINK
    with pytest.raises(SourceReadError):
        source.open("l.zip!/passwd")
    assert _read(source, "l.zip!/CT") == CT


# --- nesting, other sources --------------------------------------------------------------------


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_archive_in_an_archive_is_read_one_level_deep(tmp_path: Path,
                                                        compression: int) -> None:
    deepest = _zip({"CT": CT})
    inner = _zip({"MR": MR, "deeper.zip": deepest})
    root = _medium(tmp_path, {"outer.zip": _zip({"inner.zip": inner, "PLAN": PLAN},
                                                compression)})
    source = ArchiveSource(DirectorySource(root), spool_dir=tmp_path)
    outer = _expand(source, "outer.zip")
    nested = source.expand(_files(outer)["outer.zip!/inner.zip"])
    assert _read(source, "outer.zip!/inner.zip!/MR") == MR
    assert _read(source, "outer.zip!/PLAN") == PLAN
    too_deep = source.expand(_files(nested)["outer.zip!/inner.zip!/deeper.zip"])
    assert too_deep.record["code"] == "unsupported"
    assert "one level deep" in too_deep.record["problem"]
    source.close()


class _StreamOnly(DirectorySource):
    """A medium whose files can only be streamed (no seek), as a pipe from a tool would be."""

    def open(self, path: str) -> BinaryIO:
        inner = super().open(path)

        class Stream(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:  # type: ignore[override]
                data = inner.read(len(b))
                b[: len(data)] = data
                return len(data)

            def close(self) -> None:
                inner.close()
                super().close()

        return cast(BinaryIO, Stream())


def test_an_archive_on_a_source_that_cannot_seek_is_copied_to_our_space_first(
        tmp_path: Path) -> None:
    root = _medium(tmp_path, {"s.zip": _zip({"CT": CT})})
    source = ArchiveSource(_StreamOnly(root), spool_dir=tmp_path)
    _expand(source, "s.zip")
    assert _read(source, "s.zip!/CT") == CT


def test_archives_on_an_iso_image_read_through_the_disc(tmp_path: Path) -> None:
    need_tools("xorriso")
    tree = tree_of(tmp_path / "tree", {"DOWNLOAD/STUDY.ZIP": _zip({"IM/CT": CT, "IM/MR": MR}),
                                       "VIEWER/README.TXT": b"viewer"})
    iso = tmp_path / "disc.iso"
    made = subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-V", "HOSP", "-o", str(iso),
                           str(tree)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    with IsoSource(iso) as disc:
        source = ArchiveSource(disc)
        archive = _entry(source, "DOWNLOAD/STUDY.ZIP")
        listing = source.expand(archive)
        # Members sort with their archive when the disc is read in order.
        assert {e.location for e in listing.members} == {archive.location}
        assert archive.location is not None
        assert _read(source, "DOWNLOAD/STUDY.ZIP!/IM/CT") == CT
        assert _read(source, "DOWNLOAD/STUDY.ZIP!/IM/MR") == MR
        source.close()


def test_zipcrypto_is_decrypted_in_c(tmp_path: Path) -> None:
    # zipfile's own ZipCrypto runs at ~1.3 MB/s here (38 s for 50 MB); the C decrypter at
    # ~80 MB/s. 16 MB must take well under the 12 s pure Python would need.
    payload = bytes(range(256)) * (16 << 12)
    tree = tree_of(tmp_path / "tree", {"big": payload})
    root = tmp_path / "medium"
    root.mkdir()
    seven_zip(root / "zc.zip", tree, password="pw", encryption="ZipCrypto", method="Copy")
    source = ArchiveSource(DirectorySource(root), password="pw")
    _expand(source, "zc.zip")
    started = time.monotonic()
    assert _read(source, "zc.zip!/big") == payload
    assert time.monotonic() - started < 4.0


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_chinese_password_opens_in_utf8_or_gbk(tmp_path: Path, encoding: str) -> None:
    password = "密码1980"
    crc = zlib.crc32(MR)
    member = RawMember(b"MR", zipcrypto(MR, password.encode(encoding), crc >> 24), flags=1,
                       plain=MR)
    root = _medium(tmp_path, {"cn.zip": raw_zip([member])})
    source = ArchiveSource(DirectorySource(root), password=password)
    listing = _expand(source, "cn.zip")
    assert listing.record["locked"] == 0
    assert _read(source, "cn.zip!/MR") == MR
    wrong = ArchiveSource(DirectorySource(root), password="密码1981")
    assert _expand(wrong, "cn.zip").record["code"] == "password_wrong"
