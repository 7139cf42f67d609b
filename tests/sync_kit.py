"""Helpers for the sync tests: small imported studies and sync engines on a fake cloud."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pydicom

from kiosk.bootstrap import build_syncer
from kiosk.cloud.protocol import Cloud
from kiosk.cloud.sync import Syncer
from kiosk.samples.bulk import write_study
from kiosk.service import KioskService

#: Fast sync settings for tests: tiny batches, sub-second backoff.
FAST = {"batch_instances": 4, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.4,
        "max_attempts": 3, "timeout_seconds": 10.0}


def write_config(path: Path, **sync: Any) -> Path:
    """A kiosk TOML with a ``[sync]`` table (FAST values, overridden by ``sync``)."""
    values = FAST | sync
    lines = ["[sync]"] + [f"{k} = {v!r}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_study(service: KioskService, tmp: Path, *, instances: int = 6, seed: int = 1,
                 case_id: str | None = None, rows: int = 16) -> tuple[str, str, list[str]]:
    """Import a fresh one-series study; return ``(case_id, study_uid, sop_uids)``."""
    src = tmp / f"study-{seed}"
    paths = write_study(src, instances=instances, rows=rows, columns=rows, seed=seed,
                        patient_id=f"PID{seed}")
    report = service.import_path(src, case_id=case_id)
    assert report["instances"]["verified"] == instances, report
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    return report["case_id"], str(headers[0].StudyInstanceUID), [
        str(h.SOPInstanceUID) for h in headers]


def fake_syncer(service: KioskService, cloud: Cloud | None, **sync: Any) -> Syncer:
    """A sync engine for ``service``'s data on ``cloud`` with FAST settings."""
    config = dataclasses.replace(service.config, sync=dataclasses.replace(
        service.config.sync, **(FAST | sync)))
    syncer = build_syncer(config, service.locations, service.catalog, service.store,
                          service.audit, cloud)
    syncer.rng = random.Random(7)
    syncer.inbox.settle_seconds = 0.0
    return syncer
