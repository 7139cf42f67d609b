"""Source or target: the role of an inserted medium is decided cheaply and within a budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.errors import MediaError
from kiosk.media.medium import MediumKind, Role
from kiosk.media.mtools import MtoolsView
from kiosk.media.roles import ProbeLimits, SourceView, decide_role
from kiosk.samples.bulk import write_study
from kiosk.sources.directory import DirectorySource
from tests.media_fixtures import fat_image, iso_image, need_tools

DICM = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00"


class ListView:
    """A medium given as a dict; counts the files whose head was read."""

    def __init__(self, files: dict[str, bytes], fail: set[str] | None = None) -> None:
        self.data = files
        self.fail = fail or set()
        self.heads: list[str] = []

    def files(self) -> Iterator[str]:
        yield from self.data

    def head(self, path: str, size: int) -> bytes:
        self.heads.append(path)
        if path in self.fail:
            raise OSError(5, "Input/output error")
        return self.data[path][:size]


class SteppingClock:
    """A clock that advances ``step`` seconds every time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_dicomdir_at_the_root_is_read_first_and_decides() -> None:
    files = {f"PHOTOS/IMG_{i:04}.JPG": b"\xff\xd8" for i in range(500)} | {"DICOMDIR": DICM}
    view = ListView(files)
    assert decide_role(view, MediumKind.USB) == (Role.SOURCE, "DICOMDIR at the root")
    assert view.heads == ["DICOMDIR"]


def test_likely_dicom_names_are_sniffed_before_viewer_programs_and_documents() -> None:
    files = {"AUTORUN.INF": b"[autorun]", "VIEWER/VIEWER.EXE": b"MZ" * 100,
             "REPORT.PDF": b"%PDF", "DICOM/ST0/SE0/IM0": DICM}
    view = ListView(files)
    assert decide_role(view, MediumKind.OPTICAL) == (Role.SOURCE, "DICOM images found")
    assert view.heads == ["DICOM/ST0/SE0/IM0"]


def test_raw_datasets_without_a_preamble_count_when_named_like_dicom() -> None:
    raw = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" + b"\0" * 100
    assert decide_role(ListView({"IMAGES/I0001": raw}), MediumKind.USB)[0] is Role.SOURCE
    assert decide_role(ListView({"notes.txt": raw}), MediumKind.USB)[0] is Role.TARGET


def test_an_empty_stick_is_a_target_and_an_empty_disc_is_unknown() -> None:
    assert decide_role(ListView({}), MediumKind.USB) == (Role.TARGET, "empty")
    assert decide_role(ListView({}), MediumKind.OPTICAL) == (Role.UNKNOWN,
                                                             "the disc holds no files")


def test_a_disc_without_dicom_is_never_a_target() -> None:
    role, why = decide_role(ListView({"SETUP.EXE": b"MZ"}), MediumKind.OPTICAL)
    assert role is Role.UNKNOWN and why.startswith("no DICOM images found on the disc")


def test_unreadable_files_are_skipped_not_fatal() -> None:
    view = ListView({"IM1": DICM, "IM2": DICM}, fail={"IM1"})
    assert decide_role(view, MediumKind.USB) == (Role.SOURCE, "DICOM images found")
    assert view.heads == ["IM1", "IM2"]


def test_a_medium_that_cannot_be_listed_is_unknown_with_the_reason() -> None:
    class Broken(ListView):
        def files(self) -> Iterator[str]:
            raise MediaError("not a readable FAT file system")

    assert decide_role(Broken({}), MediumKind.USB) == (
        Role.UNKNOWN, "cannot be read: not a readable FAT file system")


def test_the_number_of_files_sniffed_is_bounded() -> None:
    view = ListView({f"F{i:05}.BIN": b"x" * 200 for i in range(10_000)})
    role, why = decide_role(view, MediumKind.USB, ProbeLimits(max_listed=5000, max_sniffed=32))
    assert role is Role.TARGET
    assert len(view.heads) == 32
    assert why == "no DICOM images found (32 of 5000+ files looked at)"


def test_the_time_spent_looking_is_bounded() -> None:
    view = ListView({f"F{i:05}": b"x" * 200 for i in range(100_000)})
    clock = SteppingClock(0.01)  # every file listed or sniffed "takes" 10 ms
    role, why = decide_role(view, MediumKind.USB, ProbeLimits(seconds=1.0), clock=clock)
    assert role is Role.TARGET
    assert clock.now < 1.1
    assert "+ files looked at" in why and len(view.heads) < 32


def test_a_real_folder_and_iso_image_decide_the_same(tmp_path: Path) -> None:
    tree = tmp_path / "CD"
    write_study(tree, instances=3, rows=16, columns=16, layout="nested")
    (tree / "VIEWER").mkdir()
    (tree / "VIEWER" / "VIEWER.EXE").write_bytes(b"MZ" * 1000)
    expected = (Role.SOURCE, "DICOM images found")
    assert decide_role(SourceView(DirectorySource(tree)), MediumKind.OPTICAL) == expected
    from kiosk.sources.iso import IsoSource

    iso = IsoSource(iso_image(tree, tmp_path / "fakecd.iso", "CT"))
    assert decide_role(SourceView(iso), MediumKind.OPTICAL) == expected


def test_a_fat_image_is_looked_at_with_mtools_without_mounting(tmp_path: Path) -> None:
    need_tools("mdir", "mtype")
    image = fat_image(tmp_path / "fakeusb.img", {
        "Photos/长城.jpg": b"\xff\xd8\xff" + b"\0" * 100, "DICOM/IM000001": DICM}, "STICK")
    view = MtoolsView(str(image))
    assert sorted(view.files()) == ["DICOM/IM000001", "Photos/长城.jpg"]
    assert view.head("DICOM/IM000001", 132) == DICM[:132]
    assert decide_role(view, MediumKind.USB) == (Role.SOURCE, "DICOM images found")
    empty = fat_image(tmp_path / "fakeusb-empty.img", {}, "EMPTY")
    assert list(MtoolsView(str(empty)).files()) == []


def test_mtools_says_plainly_when_a_stick_is_not_fat(tmp_path: Path) -> None:
    need_tools("mdir")
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x55" * 1024 * 1024)
    with pytest.raises(MediaError, match="not a readable FAT file system"):
        list(MtoolsView(str(junk)).files())
