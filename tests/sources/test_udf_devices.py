"""UDF-only discs in a block device: a loop device under a real udevd, as a DVD in a drive.

Read without mounting by ``kiosk import /dev/loopN``, by the desk when the disc is inserted
(udev event -> role check -> import), and pulled mid-read. Root only: these skip with a reason
elsewhere; CI runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import MediumRemovedError
from kiosk.media.desk import MediaDesk, RoleClassifier
from kiosk.media.medium import MediaAction, Medium, MediumKind, Role
from kiosk.media.mounter import DirectBackend, SystemMounter
from kiosk.service import KioskService
from kiosk.sources.opener import open_source
from kiosk.sources.udf import UdfSource
from kiosk.system.disks import disks_in_use, mountpoints
from tests.media_fixtures import Loop, device_size, root_media_missing
from tests.sources.udf_images import sample_disc_files, udf_only_image

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _root_media() -> None:
    if (why := root_media_missing()) is not None:
        pytest.skip(why)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    files = sample_disc_files()
    image = tmp_path_factory.mktemp("udf-dev") / "fakecd-udf.iso"
    return udf_only_image(files, image, label="SZH SAMPLE"), files


def _instances(files: dict[str, bytes]) -> int:
    return sum(1 for path, data in files.items()
               if data[128:132] == b"DICM" and not path.endswith("DICOMDIR"))


def _wait(desk: MediaDesk, device: str, action: MediaAction, within: float = 5.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in desk.poll(0.1):
            if event.medium.device == device and event.action is action:
                return event.medium
    raise AssertionError(f"no {action.value} event for {device} within {within} s")


def test_a_udf_only_disc_in_a_loop_device_is_read_then_pulled(
        udevd: None, sample: tuple[Path, dict[str, bytes]]) -> None:
    image, files = sample
    with Loop(image, read_only=True, settle=True) as loop:
        src = open_source(loop.device)
        try:
            assert isinstance(src, UdfSource) and src.description == loop.device
            assert src.label == "SZH_SAMPLE"
            assert {e.path: e.size for e in src.entries()} == {p: len(d) for p, d in files.items()}
            report = next(p for p in files if p.endswith(".PDF"))
            with src.open(report) as f:
                assert f.read() == files[report]
            loop.detach()
            deadline = time.monotonic() + 10
            while device_size(loop.device) and time.monotonic() < deadline:
                time.sleep(0.05)  # udevd's probe may defer the detach a moment
            assert not src.is_present()
            with pytest.raises(MediumRemovedError):
                src.open(report)
        finally:
            src.close()


def test_kiosk_import_of_a_udf_only_loop_device_imports_and_verifies_everything(
        udevd: None, sample: tuple[Path, dict[str, bytes]], data_dir: Path) -> None:
    image, files = sample
    with Loop(image, read_only=True, settle=True) as loop:
        run = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "--data-dir",
                              str(data_dir), "import", loop.device, "--json"],
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["complete"] is True and report["source"] == loop.device
    found = _instances(files)
    assert report["instances"]["found"] == found == report["instances"]["verified"]
    assert report["dicomdir"]["missing"] == [] and report["rejected"] == []


def test_a_udf_only_disc_inserted_at_the_desk_is_imported_without_mounting(
        udevd: None, service: KioskService, sample: tuple[Path, dict[str, bytes]],
        tmp_path: Path) -> None:
    from kiosk.media.udev_monitor import UdevMediaWatcher

    image, files = sample
    mount_root = tmp_path / "mnt"
    mounter = SystemMounter(DirectBackend(mount_root))
    watcher = UdevMediaWatcher(RoleClassifier(mounter),
                               lambda: disks_in_use(mount_root, [service.locations.data_dir]))
    service.media = MediaDesk(watcher, mounter)
    desk = service.media
    desk.poll(0)
    try:
        with Loop(image, read_only=True) as loop:
            inserted = _wait(desk, loop.device, MediaAction.INSERT)
            # The role check read the disc in user space and found the DICOM on it.
            assert (inserted.fs_type, inserted.role) == ("udf", Role.SOURCE)
            seen_mounted: list[bool] = []

            def progress(_p: object) -> None:
                seen_mounted.append(loop.device in mountpoints().values())

            report = service.import_medium(loop.device, on_progress=progress)
            assert seen_mounted and not any(seen_mounted), "the disc was mounted"
        assert report["complete"] is True
        found = _instances(files)
        assert report["instances"]["found"] == found == report["instances"]["verified"]
        rows = [r for s in service.catalog.studies(report["case_id"])
                for r in service.catalog.manifest(s)]
        assert len(rows) == found
        for row in rows:
            assert service.store.read_bytes(row.sha256) == files[row.source_path]
    finally:
        desk.close()



class _Commands:
    """Records the commands a mounter runs (and pretends they worked); no mount happens."""

    def __init__(self) -> None:
        self.argv: list[list[str]] = []

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.argv.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def test_the_mounter_reads_udf_only_in_user_space_and_mounts_only_what_it_cannot_read(
        sample: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    if shutil.which("mkudffs") is None:
        pytest.skip("mkudffs is not installed (apt-get install udftools)")
    vat = tmp_path / "fakecd-vat.img"
    with open(vat, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    subprocess.run(["mkudffs", "--media-type=cdr", "--udfrev=0x0201", str(vat)], check=True,
                   capture_output=True, timeout=60)
    commands = _Commands()
    mounter = SystemMounter(DirectBackend(tmp_path / "mnt", run=commands.run,
                                          is_mounted=lambda _p: False))
    image, _files = sample
    with Loop(image, read_only=True) as udf_only, Loop(vat, read_only=True) as cdr:
        disc = Medium(device=udf_only.device, kind=MediumKind.OPTICAL, fs_type="udf",
                      read_only=True, disk=udf_only.device)
        source = mounter.open_source(disc)
        assert isinstance(source, UdfSource) and commands.argv == []
        mounter.release(disc)
        never_finalised = Medium(device=cdr.device, kind=MediumKind.OPTICAL, fs_type="udf",
                                 read_only=True, disk=cdr.device)
        mounter.open_source(never_finalised)  # a VAT: the kernel's driver reads those
        assert [argv[:3] for argv in commands.argv] == [["mount", "-t", "udf"]]
        assert commands.argv[0][-2] == cdr.device
        mounter.release(never_finalised)
