"""A power cut at any point of an import: SIGKILL the real ``kiosk import`` at random moments.

After every kill the kiosk must start again with a consistent store and database (DESIGN.md §5):
every blob under its final name is whole, every manifest points at whole blobs, no case is
shown complete without all its images, and the killed job is marked ``interrupted``. A final
re-run completes the import with every image exactly once.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from kiosk.bootstrap import build_service
from kiosk.service import KioskService
from kiosk.store.blobstore import BlobStore

INSTANCES = 160  # 512 x 512 x 16 bit: ~0.5 MB each, ~85 MB in all
KILLS = 6
SEED = 20261127
_HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def disc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A hospital disc with one CT series, and the SOP Instance UIDs on it."""
    from kiosk.samples.bulk import write_study

    root = tmp_path_factory.mktemp("power-cut") / "CT_DISC"
    paths = write_study(root, instances=INSTANCES, rows=512, columns=512, layout="nested")
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}
    assert len(uids) == INSTANCES
    return root, uids


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small sync batches, so blobs are committed many times during one import."""
    path = tmp_path_factory.mktemp("power-cut-config") / "kiosk.toml"
    path.write_text("[import]\nsync_batch_bytes = 1048576\n", encoding="utf-8")
    return path


def _kiosk_import(config: Path, data_dir: Path, source: Path,
                  out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as stdout:
        return subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli.main", "--config", str(config), "--data-dir",
             str(data_dir), "import", str(source), "--json"],
            stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )


def _wait_for_job_start(proc: subprocess.Popen[bytes], staging: Path) -> None:
    """Return once the import has recorded its job (its staging folder appears)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if any(staging.iterdir()):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.002)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _assert_consistent(service: KioskService, disc_uids: set[str],
                       hashed: dict[Path, str]) -> None:
    """The invariants a power cut must never break."""
    # Every blob under its final name is whole: its name is the hash of its bytes. (Blobs are
    # immutable once named, so one hash per path is enough across kills.)
    for path in service.store.blobs_dir.glob("*/*"):
        if _HEX64.fullmatch(path.name):
            if path not in hashed:
                hashed[path] = _sha256(path)
            assert hashed[path] == path.name, f"half-written blob under its final name: {path}"
            assert path.parent.name == path.name[:2]
    # A restart drops every staging folder of the dead process; tmp/.small (small blobs' temps,
    # removed once stale: another process may be writing one) holds temp files only.
    left = service.store.leftovers()
    assert all(p.parent.name == ".small" and p.name.endswith(".tmp") for p in left), left
    # Nothing is left "running" by a dead process.
    assert not service.catalog.db.find("jobs", state="running")

    for case in service.catalog.cases():
        uids: list[str] = []
        for study in service.catalog.studies(case["case_id"]):
            assert service.store.has(study["manifest"]), "study manifest blob missing"
            rows = service.catalog.manifest(study)
            assert study["instances"] == len(rows)
            for row in rows:
                assert service.store.has(row.sha256), f"{row.source_path}: blob missing"
                assert service.store.path_for(row.sha256).stat().st_size == row.size
                assert row.verified, f"{row.source_path}: {row.problem}"
            uids += [r.sop_instance_uid for r in rows]
        assert len(uids) == len(set(uids)), "an image is in the case twice"
        assert set(uids) <= disc_uids
        if case["status"] == "complete":
            assert set(uids) == disc_uids, (
                f"case {case['case_id']} shown complete with {len(uids)} of {len(disc_uids)} "
                "images")


def _job_of(service: KioskService, before: list[dict[str, Any]]) -> dict[str, Any] | None:
    jobs = service.catalog.jobs(kind="import")
    known = {j["job_id"] for j in before}
    new = [j for j in jobs if j["job_id"] not in known]
    assert len(new) <= 1
    return new[0] if new else None


@pytest.mark.slow
def test_a_power_cut_at_any_moment_of_an_import_leaves_a_consistent_resumable_kiosk(
    disc: tuple[Path, set[str]], config_file: Path, tmp_path: Path
) -> None:
    source, disc_uids = disc

    # Calibrate on a scratch kiosk: how long an import of this disc runs once its job has
    # started. The second run (images already stored) is what every resumed run looks like.
    scratch = tmp_path / "calibration"
    windows = []
    for n in range(2):
        proc = _kiosk_import(config_file, scratch, source, tmp_path / f"cal{n}.json")
        assert proc.wait(timeout=120) == 0
        windows.append(json.loads((tmp_path / f"cal{n}.json").read_text())["seconds"])
    window = min(windows)

    data_dir = tmp_path / "kiosk-data"
    rng = random.Random(SEED)
    # One kill in each sixth of the import (counting, copying, committing, saving, ...).
    delays = [window * (i + rng.random()) / KILLS for i in range(KILLS)]
    hashed: dict[Path, str] = {}
    before: list[dict[str, Any]] = []
    outcomes: list[str] = []
    for i, delay in enumerate(delays):
        proc = _kiosk_import(config_file, data_dir, source, tmp_path / f"run{i}.json")
        _wait_for_job_start(proc, data_dir / "tmp")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)

        # The kiosk comes back: the database opens and start-up recovery runs.
        service = build_service(data_dir=data_dir, env={})
        _assert_consistent(service, disc_uids, hashed)
        job = _job_of(service, before)
        if code == -signal.SIGKILL:
            if job is None:
                outcomes.append("before-job")
            elif job["state"] == "interrupted":
                outcomes.append("interrupted")
                assert job.get("error")
            else:
                # Killed after the job was recorded as finished, while the process exited.
                assert job["state"] == "complete", job
                outcomes.append("after-finish")
        else:
            assert code == 0
            assert job is not None and job["state"] == "complete"
            outcomes.append("finished")
        before = service.catalog.jobs(kind="import")

    assert outcomes.count("interrupted") >= KILLS // 2, (
        f"too few kills landed inside the import: {outcomes} (delays {delays}, window "
        f"{window} s)")

    # Re-insert the disc: the import completes, every image exactly once.
    proc = _kiosk_import(config_file, data_dir, source, tmp_path / "final.json")
    assert proc.wait(timeout=120) == 0
    report = json.loads((tmp_path / "final.json").read_text())
    # The successful run itself left nothing in staging (checked before any restart cleans it).
    store = BlobStore(data_dir / "blobs", data_dir / "tmp")
    assert store.leftovers() == []
    assert report["complete"] is True
    assert report["instances"]["found"] == INSTANCES
    assert report["instances"]["verified"] == INSTANCES

    service = build_service(data_dir=data_dir, env={})
    _assert_consistent(service, disc_uids, hashed)
    case = service.catalog.case(report["case_id"])
    assert case is not None and case["status"] == "complete"
    uids = [r.sop_instance_uid for s in service.catalog.studies(case["case_id"])
            for r in service.catalog.manifest(s)]
    assert len(uids) == INSTANCES == len(list(source.rglob("IM*")))
    assert sorted(uids) == sorted(disc_uids)  # each one exactly once
    job = service.catalog.job(report["job_id"])
    assert job is not None and job["state"] == "complete"
