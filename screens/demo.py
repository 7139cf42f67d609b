"""``kiosk demo``: the whole desk on simulated media, with no hardware and no network.

On the desk: the embedded sample hospital disc (key D), a second disc of the same patient (M,
for "add another disc to this case"), and an empty folder as the patient's USB stick (S, on the
Export screen). The office inbox holds a sample English translation named after the sample
CT study, so the Reports screen shows it arriving once the disc is imported. A dummy receipt
printer takes the slip.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kiosk.bootstrap import attach_media
from kiosk.media.fake_media import FakeMediaWatcher
from kiosk.media.medium import MediumKind
from kiosk.samples.pdf import minimal_pdf
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from kiosk_tui.app import DemoMedia, run_app

#: The demo's coordinator PIN, preset (hashed) in the demo's data directory and shown in the
#: PIN dialog. Too easy for an appliance: `kiosk pin set` refuses it there.
DEMO_PIN = "0000"


def translation_lines(case_hint: str) -> list[str]:
    """A stand-in certified English translation of the sample report."""
    return [
        "MedPass Translation Office - Certified translation (sample, synthetic data)",
        "",
        "Radiology report of Shenzhen Example People's Hospital, translated from Chinese.",
        "Patient: LI Hua   Date of birth: 1985-03-14",
        "Exam: CT chest, plain (2026-11-27); chest X-ray PA/LAT (2026-11-25)",
        "",
        "Findings: solid nodule of about 2.5 cm in the right upper lobe.",
        "No pleural effusion. Heart size normal. Bones intact.",
        "Impression: right upper lobe nodule; follow-up CT advised.",
        "",
        f"Reference: {case_hint}",
    ]


def prepare_demo(service: KioskService, workdir: Path) -> tuple[DemoMedia, FakeMediaWatcher]:
    """Write the sample media into ``workdir``, the translation into the inbox; attach media.

    Returns the key-press inserts for the app and the watcher (close it afterwards).
    """
    from kiosk.links.printer import DummyReceiptPrinter  # python-escpos: only when the demo runs

    disc = build_sample_disc(workdir / "SAMPLE_DISC")
    second = build_sample_disc(workdir / "SAMPLE_DISC_2", ct_slices=8, seed=2)
    stick = workdir / "PATIENT_STICK"
    stick.mkdir(parents=True, exist_ok=True)
    # Named after the CT study: the sync engine matches it to whichever case gets that study.
    inbox = service.locations.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    translation = inbox / f"{disc.study_uids[0]}.en.pdf"
    translation.write_bytes(minimal_pdf(translation_lines(disc.study_uids[0])))
    old = time.time() - 60  # older than the inbox's settle time: taken on the first round
    os.utime(translation, (old, old))
    service.printer = DummyReceiptPrinter()

    watcher = FakeMediaWatcher()
    attach_media(service, fake=watcher)
    demo = DemoMedia(insert={
        "disc": lambda: watcher.insert(disc.root, kind=MediumKind.OPTICAL,
                                       label="SZH HOSPITAL CD", vendor="HL-DT-ST"),
        "disc2": lambda: watcher.insert(second.root, kind=MediumKind.OPTICAL,
                                        label="SZH HOSPITAL CD 2", vendor="HL-DT-ST"),
        "stick": lambda: watcher.insert(stick, kind=MediumKind.USB, label="PATIENT",
                                        vendor="Kingston", model="DataTraveler"),
    })
    return demo, watcher


def run_demo(service: KioskService, workdir: Path, **options: Any) -> int:
    """Run the desk UI on the demo's simulated media until it is quit (Ctrl+Q)."""
    demo, watcher = prepare_demo(service, workdir)
    if not service.pin_status().set:
        service.set_pin(DEMO_PIN, source="demo", allow_weak=True)
    # The hint only while 0000 is the PIN in force (a --data-dir kiosk may have its own).
    options.setdefault("pin_hint", DEMO_PIN if service.pin_matches(DEMO_PIN) else None)
    try:
        return run_app(service, demo=demo, **options)
    finally:
        if service.media is not None:
            service.media.close()
        watcher.close()
