"""The role check at insertion reads a crafted disc within its budget (issue 15).

:class:`kiosk.media.desk.RoleClassifier` decides a new medium's role the moment it is inserted,
through the same :class:`~kiosk.sources.iso.IsoSource` an import uses. These are the discs that
stalled it: the real classifier and mounter on real (crafted) images, as the desk runs them.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from kiosk.media.desk import RoleClassifier
from kiosk.media.medium import Medium, MediumKind, Role
from kiosk.media.mounter import DirectBackend, SystemMounter
from kiosk.media.roles import ProbeLimits
from kiosk.sources.scan_limits import ScanLimits
from tests.sources.crafted_iso import dense_listing_iso, files_past_the_end_iso


def _inserted(image: Path) -> Medium:
    """The image as udev reports a disc (ISO9660 is read in user space: nothing is mounted)."""
    return Medium(device=str(image), kind=MediumKind.OPTICAL, fs_type="iso9660",
                  label="CRAFTED", read_only=True)


def _classify(image: Path, mounts: Path, limits: ScanLimits | None = None,
              ) -> tuple[Medium, float, int]:
    """Classify the inserted image: the medium, the seconds it took, and its peak Python memory
    (traced in a second run: tracing slows Python down several times)."""
    classify = RoleClassifier(SystemMounter(DirectBackend(mounts), limits=limits))
    began = time.monotonic()
    medium = classify(_inserted(image))
    took = time.monotonic() - began
    tracemalloc.start()
    try:
        assert classify(_inserted(image)) == medium
        return medium, took, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_census_bypass_disc_is_refused_at_insertion_within_the_budget(
        tmp_path: Path) -> None:
    # The reviewer's disc scaled down (see test_iso_census): 20,000 records in a 5 MB listing
    # against a limit of 1,224; pycdlib used to index all of them while the desk waited.
    image = dense_listing_iso(tmp_path / "bypass.iso", 20_000, record_size=255)
    medium, took, peak = _classify(image, tmp_path / "mnt", ScanLimits(max_files=100))
    assert medium.role is Role.UNKNOWN
    assert medium.role_reason.startswith("cannot be read: ")
    assert "1,224 entries" in medium.role_reason and "import.max_files" in medium.role_reason
    assert took < ProbeLimits().seconds, took
    assert peak < 2 * 1024 * 1024, peak  # 64 KiB reads, never the 5 MB listing at once


def test_a_disc_of_files_past_its_end_is_classified_within_the_budget(tmp_path: Path) -> None:
    # 4,000 files whose data lies past the end of the image: indexing them used to take 7 s.
    image = files_past_the_end_iso(tmp_path / "past.iso", 4000)
    medium, took, _ = _classify(image, tmp_path / "mnt")
    assert medium.role is Role.UNKNOWN  # a disc is never a target; nothing readable on it
    assert took < ProbeLimits().seconds, took
