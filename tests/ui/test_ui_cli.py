"""`kiosk` and `kiosk demo` start the desk UI (wiring only: the UI itself is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import kiosk.bootstrap
import kiosk_tui.app
import kiosk_tui.demo
from kiosk.cli.main import main
from kiosk.links.printer import DummyReceiptPrinter
from kiosk.media.medium import Role


def test_kiosk_demo_sets_up_the_sample_media_translation_and_printer(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run_app(service: Any, **options: Any) -> int:
        demo = options["demo"]
        demo.insert["disc"]()
        demo.insert["stick"]()
        service.media.poll(1.0)
        seen["roles"] = sorted(m.role.value for m in service.media.present())
        seen["inbox"] = sorted(p.name for p in service.locations.inbox_dir.iterdir())
        seen["printer"] = service.printer
        seen["options"] = options
        seen["data_dir"] = service.locations.data_dir
        seen["pin_is_demo"] = service.pin_matches(kiosk_tui.demo.DEMO_PIN)
        return 0

    monkeypatch.setattr(kiosk_tui.demo, "run_app", fake_run_app)
    monkeypatch.delenv("KIOSK_DATA_DIR", raising=False)
    assert main(["demo"]) == 0
    assert seen["roles"] == [Role.SOURCE.value, Role.TARGET.value]
    assert len(seen["inbox"]) == 1 and seen["inbox"][0].endswith(".en.pdf")
    assert isinstance(seen["printer"], DummyReceiptPrinter)
    assert seen["options"]["pin_hint"] == kiosk_tui.demo.DEMO_PIN
    assert seen["pin_is_demo"]  # preset (hashed) in the temporary kiosk
    assert not seen["data_dir"].exists()  # a temporary kiosk, gone after the demo


def test_kiosk_without_a_command_runs_the_desk_on_real_media(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    class Desk:
        def cleanup_stale(self) -> list[str]:
            calls.append("cleanup")
            return []

        def close(self) -> None:
            calls.append("close")

    def fake_attach(service: Any, **_kw: Any) -> Desk:
        calls.append("attach")
        return Desk()

    def fake_run_app(service: Any, **options: Any) -> int:
        calls.append("run")
        return 0

    monkeypatch.setattr(kiosk.bootstrap, "attach_media", fake_attach)
    monkeypatch.setattr(kiosk_tui.app, "run_app", fake_run_app)
    assert main(["--data-dir", str(tmp_path / "d")]) == 0
    assert calls == ["attach", "cleanup", "run", "close"]
