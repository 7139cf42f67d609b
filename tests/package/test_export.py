"""Patient USB stories: the package opens at home, and a bad stick never loses anything."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.errors import StoreError, UsageError
from kiosk.links.manifest_signature import check_manifest_signature
from kiosk.package.export import (
    INCOMPLETE,
    MARKER,
    ExportVerificationError,
    StickFullError,
    StickReadOnlyError,
    StickRemovedError,
)
from kiosk.package.passphrase import ALPHABET, entropy_bits, new_passphrase
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from kiosk.viewer import built_file
from tests.conftest import PYDICOM_FILES, is_root

HAVE_7Z = shutil.which("7z") is not None
needs_7z = pytest.mark.skipif(not HAVE_7Z, reason="7z (p7zip-full) is not installed")
needs_root = pytest.mark.skipif(not is_root(), reason="needs root to mount a small tmpfs stick")


@pytest.fixture
def case(service: KioskService, tmp_path: Path) -> str:
    """A case imported from the sample hospital disc."""
    disc = build_sample_disc(tmp_path / "disc", ct_slices=6, size=64)
    report = service.import_path(disc.root)
    assert report["instances"]["verified"] == disc.instances
    return str(report["case_id"])


def _store_state(service: KioskService) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in service.locations.blobs_dir.rglob("*") if p.is_file()}


def _extract(folder: Path, passphrase: str, dest: Path) -> subprocess.CompletedProcess[str]:
    first = sorted(folder.glob("IMAGES.zip*"))[0]
    return subprocess.run(["7z", "x", "-y", f"-p{passphrase}", f"-o{dest}", str(first)],
                          capture_output=True, text=True, timeout=120)


def _check_pdi(root: Path, manifest: dict) -> None:
    """DICOMDIR at the root, 8-char uppercase components, bit-exact files, conformance."""
    assert (root / "DICOMDIR").is_file()
    for entry in manifest["files"]:
        data = (root / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        if entry["kind"] == "dicom":
            for part in entry["path"].split("/"):
                assert re.fullmatch(r"[A-Z0-9_]{1,8}", part), entry["path"]
    if shutil.which("dciodvfy"):
        out = subprocess.run(["dciodvfy", str(root / "DICOMDIR")], capture_output=True,
                             text=True, timeout=60)
        errors = [line for line in (out.stdout + out.stderr).splitlines()
                  if line.startswith("Error")]
        assert errors == []
    if shutil.which("dcmftest"):
        dicoms = [str(root / e["path"]) for e in manifest["files"] if e["kind"] == "dicom"]
        out = subprocess.run(["dcmftest", *dicoms], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and "no:" not in out.stdout, out.stdout


@needs_7z
def test_an_encrypted_export_opens_with_7z_and_the_passphrase_only(
        service: KioskService, case: str, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    report = service.export_case(case, stick)
    assert report["encrypted"] and report["verified"]
    folder = Path(report["folder"])
    assert folder.parent == stick and not folder.name.endswith(INCOMPLETE)
    assert sorted(p.name for p in folder.iterdir()) == [
        "IMAGES.zip", "LICENSES.TXT", "OPEN_IMAGES.html", "README.TXT"]
    # The opener page is the built one, byte for byte: the same on every stick.
    assert (folder / "OPEN_IMAGES.html").read_bytes() == built_file("OPEN_IMAGES.html").read_bytes()
    readme = (folder / "README.TXT").read_text("utf-8-sig")
    assert "7-Zip" in readme and "密码" in readme
    assert readme.index("OPEN_IMAGES.html") < readme.index("7-Zip")  # the page first
    groups = service.manifest_signer.fingerprint.split()
    assert " ".join(groups[:8]) in readme and " ".join(groups[8:]) in readme
    assert "Li" not in readme.replace("Linux", "")  # no patient data outside the archive
    out = tmp_path / "opened"
    assert _extract(folder, report["passphrase"], out).returncode == 0
    manifest = json.loads((out / "MANIFEST.JSON").read_text("utf-8"))
    assert manifest["case_id"] == case and manifest["encrypted"] is True
    _check_pdi(out, manifest)
    # Signed by this kiosk's key (what `kiosk link pubkey` prints), over the exact bytes.
    signed = check_manifest_signature((out / "MANIFEST.JWS").read_bytes(),
                                      (out / "MANIFEST.JSON").read_bytes(),
                                      service.links.verifier.public_pem)
    assert signed.problem is None and signed.fingerprint == service.manifest_signer.fingerprint
    assert {e["path"]: e["sha256"] for e in manifest["beside"]} == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("LICENSES.TXT", "OPEN_IMAGES.html", "README.TXT")}
    # Bit-exact with the kiosk's store.
    for entry in manifest["files"]:
        if entry["kind"] == "dicom":
            assert entry["sha256"] == entry["original_sha256"]
    wrong = _extract(folder, "WRONG-PASS-WORD-XXXX-YYYY", tmp_path / "nope")
    assert wrong.returncode != 0


def test_an_unencrypted_export_is_a_plain_pdi_file_set(
        service: KioskService, case: str, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    report = service.export_case(case, stick, encrypt=False)
    assert report["encrypted"] is False and "passphrase" not in report
    folder = Path(report["folder"])
    manifest = json.loads((folder / "MANIFEST.JSON").read_text("utf-8"))
    _check_pdi(folder, manifest)
    assert not (folder / MARKER).exists()
    [entry] = [e for e in service.audit.entries() if e["action"] == "export"]
    assert entry["details"]["encrypted"] is False


def test_a_real_multi_patient_disc_exports_with_a_conformant_dicomdir(
        service: KioskService, tmp_path: Path) -> None:
    disc = tmp_path / "cd"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests" / "77654033", disc / "77654033")
    shutil.copytree(PYDICOM_FILES / "dicomdirtests" / "98892003", disc / "98892003")
    imported = service.import_path(disc)
    case = imported["case_id"]
    # Two patient ids on one stick only with the coordinator's word that they are one person
    # (what `kiosk import --case CASE --same-person` records).
    service.file_by_patient(imported, prior=[], same_person=True)
    stick = tmp_path / "stick"
    stick.mkdir()
    report = service.export_case(case, stick, encrypt=False)
    folder = Path(report["folder"])
    manifest = json.loads((folder / "MANIFEST.JSON").read_text("utf-8"))
    assert len(manifest["patients"]) == 2
    _check_pdi(folder, manifest)


def test_the_patients_own_files_on_the_stick_are_left_alone(
        service: KioskService, case: str, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    (stick / "Photos").mkdir(parents=True)
    (stick / "Photos" / "holiday.jpg").write_bytes(b"\xff\xd8 a photo")
    (stick / "DICOMDIR").write_bytes(b"someone else's disc index")
    before = {p: p.read_bytes() for p in stick.rglob("*") if p.is_file()}
    first = service.export_case(case, stick, encrypt=False)
    second = service.export_case(case, stick, encrypt=False)
    assert first["folder"] != second["folder"]  # a second export never overwrites the first
    assert {p: p.read_bytes() for p in before} == before


def test_a_stick_without_enough_space_is_refused_before_writing(
        service: KioskService, case: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()

    class Tiny:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(os, "statvfs", lambda _p: Tiny)
    with pytest.raises(StickFullError, match=r"needs \d+ MB"):
        service.export_case(case, stick)
    assert list(stick.iterdir()) == []


@needs_root
def test_a_stick_that_fills_up_mid_write_gives_a_clear_error_and_no_package(
        service: KioskService, case: str, small_stick: Path) -> None:
    store_before = _store_state(service)
    (small_stick / "mine.txt").write_bytes(b"patient's own file")
    filled = False

    def fill(p: object) -> None:
        nonlocal filled
        if not filled and getattr(p, "phase", "") == "writing":
            filled = True  # someone else's data arrives: the stick is now full
            with open(small_stick / "filler.bin", "wb") as fh, pytest.raises(OSError):
                fh.write(b"\0" * (8 << 20))

    with pytest.raises(StickFullError, match="ran out of space"):
        service.export_case(case, small_stick, on_progress=fill)
    names = sorted(p.name for p in small_stick.iterdir())
    assert names == ["filler.bin", "mine.txt"]  # our unfinished folder is gone
    assert (small_stick / "mine.txt").read_bytes() == b"patient's own file"
    assert _store_state(service) == store_before
    (small_stick / "filler.bin").unlink()
    assert service.export_case(case, small_stick, encrypt=True)["verified"]


@needs_root
def test_a_read_only_stick_is_refused_with_a_clear_message(
        service: KioskService, case: str, small_stick: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_stick)], check=True)
    with pytest.raises(StickReadOnlyError, match="write-protect"):
        service.export_case(case, small_stick)
    assert list(small_stick.iterdir()) == []


def test_a_stick_pulled_mid_write_leaves_nothing_that_looks_complete_and_a_retry_works(
        service: KioskService, case: str, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    store_before = _store_state(service)

    def pull(p: object) -> None:
        if getattr(p, "phase", "") == "writing":
            for folder in stick.iterdir():
                shutil.rmtree(folder, ignore_errors=True)

    with pytest.raises((StickRemovedError, ExportVerificationError)):
        service.export_case(case, stick, encrypt=False, on_progress=pull)
    assert [p for p in stick.iterdir() if not p.name.endswith(INCOMPLETE)] == []
    assert _store_state(service) == store_before
    report = service.export_case(case, stick, encrypt=False)
    assert report["verified"] and Path(report["folder"]).is_dir()


def test_a_stick_that_returns_other_bytes_than_written_fails_verification(
        service: KioskService, tmp_path: Path) -> None:
    from tests.conftest import make_instance

    for i in range(10):  # ~5 MB: the first 4 MiB block reaches the stick before close
        make_instance(tmp_path / "cd" / f"IM{i}", study_uid="1.2.3.9", series_uid="1.2.3.9.1",
                      rows=512, columns=512, seed=i)
    case = service.import_path(tmp_path / "cd")["case_id"]
    stick = tmp_path / "stick"
    stick.mkdir()
    store_before = _store_state(service)

    def corrupt(p: object) -> None:
        if getattr(p, "phase", "") != "verifying":
            return
        deadline = time.monotonic() + 30  # the first block is on its way to the stick
        while time.monotonic() < deadline:
            volumes = list(stick.glob("*" + INCOMPLETE + "/IMAGES.zip.001.partial"))
            if volumes and volumes[0].stat().st_size >= 4 << 20:
                break
            time.sleep(0.01)
        with open(volumes[0], "r+b") as fh:  # the flash "remembers" one bit wrong
            fh.seek(2 << 20)
            byte = fh.read(1)[0]
            fh.seek(2 << 20)
            fh.write(bytes([byte ^ 1]))

    with pytest.raises(ExportVerificationError, match="not what was written"):
        service.export_case(case, stick, on_progress=corrupt)
    assert list(stick.iterdir()) == []  # nothing that could pass for a package
    assert _store_state(service) == store_before
    assert service.export_case(case, stick)["verified"]  # another try (another stick) works


def test_kill_9_mid_export_leaves_a_folder_marked_incomplete_and_the_retry_cleans_it(
        service: KioskService, case: str, tmp_path: Path, data_dir: Path) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    store_before = _store_state(service)
    # Hold the export between writing and read-back so the kill lands mid-export.
    script = (
        "import sys, time, kiosk.package.export as e\n"
        "orig = e.read_back_sha256\n"
        "def slow(paths):\n"
        "    time.sleep(30)\n"
        "    return orig(paths)\n"
        "e.read_back_sha256 = slow\n"
        "from kiosk.cli.main import main\n"
        f"sys.exit(main(['--data-dir', {str(data_dir)!r}, 'export', {case!r}, "
        f"'--to', {str(stick)!r}, '--no-encryption']))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        leftovers = list(stick.glob("*" + INCOMPLETE))
        if leftovers and (leftovers[0] / "MANIFEST.JSON").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    [leftover] = list(stick.iterdir())
    assert leftover.name.endswith(INCOMPLETE) and (leftover / MARKER).exists()
    assert _store_state(service) == store_before
    report = service.export_case(case, stick, encrypt=False)
    assert report["verified"]
    assert [p.name for p in stick.iterdir()] == [Path(report["folder"]).name]


def test_a_package_with_two_versions_of_one_uid_lists_both_under_their_own_file_ids(
        service: KioskService, tmp_path: Path) -> None:
    from tests.conftest import make_instance

    make_instance(tmp_path / "cd" / "V1", sop_uid="1.2.3.4.5", study_uid="1.2.3.9", seed=1)
    make_instance(tmp_path / "cd" / "V2", sop_uid="1.2.3.4.5", study_uid="1.2.3.9", seed=2)
    case = service.import_path(tmp_path / "cd")["case_id"]
    (tmp_path / "stick").mkdir()
    folder = Path(service.export_case(case, tmp_path / "stick", encrypt=False)["folder"])
    manifest = json.loads((folder / "MANIFEST.JSON").read_text("utf-8"))
    dicoms = [e for e in manifest["files"] if e["kind"] == "dicom"]
    assert len(dicoms) == 2 and len({e["path"] for e in dicoms}) == 2
    assert [e["same_sop_instance_uid"] for e in dicoms] == [[dicoms[1]["path"]],
                                                            [dicoms[0]["path"]]]
    _check_pdi(folder, manifest)  # both in the DICOMDIR, which dciodvfy accepts


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
def test_an_image_a_dicomdir_cannot_list_stops_the_export_and_leaves_nothing(
        service: KioskService, tmp_path: Path, encrypt: bool) -> None:
    from pydicom import dcmread

    from tests.conftest import make_instance

    for i in range(3):
        make_instance(tmp_path / "cd" / f"IM{i}", study_uid="1.2.3.9", seed=i)
    make_instance(tmp_path / "cd" / "DOC", study_uid="1.2.3.9")
    doc = dcmread(tmp_path / "cd" / "DOC")  # a document without its MIME type (Type 1)
    del doc.PixelData
    doc.EncapsulatedDocument = b"%PDF-1.4 ..."
    doc.save_as(tmp_path / "cd" / "DOC")
    case = service.import_path(tmp_path / "cd")["case_id"]
    stick = tmp_path / "stick"
    stick.mkdir()
    with pytest.raises(UsageError, match=r"cannot be indexed for a DICOMDIR: .*MIME Type"):
        service.export_case(case, stick, encrypt=encrypt)
    assert list(stick.iterdir()) == []  # what was written before the error is gone


def test_an_image_missing_from_the_kiosks_store_is_not_blamed_on_the_stick(
        service: KioskService, case: str, tmp_path: Path) -> None:
    [study, *_] = service.catalog.studies(case)
    rows = service.catalog.manifest(study)
    service.store.path_for(rows[len(rows) // 2].sha256).unlink()  # the kiosk's disk lost an image
    stick = tmp_path / "stick"
    stick.mkdir()
    with pytest.raises(StoreError, match=r"kiosk's copy of .* cannot be read"):
        service.export_case(case, stick)
    assert list(stick.iterdir()) == []


def test_files_named_ahead_of_the_writer_arrive_in_order_and_so_do_errors() -> None:
    from kiosk.package.export import _ahead

    def named() -> Iterator[int]:
        yield from range(100)
        raise StoreError("the store broke after the hundredth file")

    got: list[int] = []
    with pytest.raises(StoreError, match="hundredth"), _ahead(named(), 8) as files:
        got.extend(files)
    assert got == list(range(100))

    def endless() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    started = time.monotonic()
    with _ahead(endless(), 4) as files:  # the writer gives up (a full stick): the thread stops
        assert next(files) == 0
    assert time.monotonic() - started < 5


def test_passphrases_are_random_unambiguous_and_strong() -> None:
    phrases = {new_passphrase() for _ in range(200)}
    assert len(phrases) == 200
    assert entropy_bits() >= 80
    for phrase in phrases:
        groups = phrase.split("-")
        assert len(groups) == 5 and all(len(g) == 4 for g in groups)
        assert set("".join(groups)) <= set(ALPHABET)
        assert not set("0O1IL") & set(phrase)


needs_fat_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "fsck.fat", "7z")),
    reason="needs dosfstools, mtools and 7z")


@needs_fat_tools
def test_a_split_encrypted_package_on_a_real_fat32_stick_opens_with_7z(
        service: KioskService, case: str, tmp_path: Path) -> None:
    image = tmp_path / "fakeusb.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "PATIENT", str(image)], check=True,
                   capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    # The patient's own file, already on the stick.
    own = tmp_path / "OWN.TXT"
    own.write_text("mine")
    subprocess.run(["mcopy", "-i", str(image), str(own), "::/OWN.TXT"], check=True, env=env)

    staging = tmp_path / "staging"
    staging.mkdir()
    report = service.export_case(case, staging, split_size=64 * 1024)
    folder = Path(report["folder"])
    volumes = sorted(folder.glob("IMAGES.zip.*"))
    assert len(volumes) > 1 and all(v.stat().st_size <= 64 * 1024 for v in volumes)
    subprocess.run(["mcopy", "-s", "-i", str(image), str(folder), "::/"], check=True, env=env)
    fsck = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    back = tmp_path / "readback"
    back.mkdir()
    subprocess.run(["mcopy", "-s", "-i", str(image), f"::/{folder.name}", str(back)],
                   check=True, env=env)
    subprocess.run(["mcopy", "-i", str(image), "::/OWN.TXT", str(back / "OWN.TXT")],
                   check=True, env=env)
    assert (back / "OWN.TXT").read_text() == "mine"
    opened = tmp_path / "opened"
    result = _extract(back / folder.name, report["passphrase"], opened)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((opened / "MANIFEST.JSON").read_text("utf-8"))
    _check_pdi(opened, manifest)
    assert _extract(back / folder.name, "AAAA-BBBB-CCCC-DDDD-EEEE",
                    tmp_path / "wrong").returncode != 0
