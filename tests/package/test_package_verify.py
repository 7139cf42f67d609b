"""``kiosk package verify``: good packages pass; each bad one names what is wrong (exit 4)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.links.signing_key import load_or_create
from kiosk.samples.sample_disc import build_sample_disc
from kiosk.service import KioskService
from tests.package_kit import Package, flip_ciphertext_byte, rewrite

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def case(service: KioskService, tmp_path: Path) -> str:
    """A case imported from the sample hospital disc, with a report and its translation."""
    disc = build_sample_disc(tmp_path / "disc", ct_slices=4, size=64)
    return str(service.import_path(disc.root)["case_id"])


def _export(service: KioskService, case: str, tmp_path: Path, **kw: object) -> tuple[Path, str]:
    stick = tmp_path / "stick"
    stick.mkdir(exist_ok=True)
    report = service.export_case(case, stick, **kw)  # type: ignore[arg-type]
    return Path(report["folder"]), str(report.get("passphrase", ""))


def _rewrite(folder: Path, passphrase: str, change: Callable[[dict[str, bytes]], None]) -> None:
    rewrite(Package(folder, passphrase, ""), change)


def test_a_good_package_verifies_and_says_what_it_holds(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    folder, passphrase = _export(service, case, tmp_path)
    code, out, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 0, err
    fingerprint = service.manifest_signer.fingerprint
    assert out.startswith("Verified: ") and f"(key fingerprint {fingerprint})" in out
    assert "kiosk kiosk-1" in out and "not pinned" in out
    pem = tmp_path / "pub.pem"
    code, out, _ = run_cli("link", "pubkey")
    pem.write_text(out)
    code, out, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase,
                             "--key", str(pem), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["key_pinned"] and report["fingerprint"] == fingerprint
    assert report["case_id"] == case and report["images"] == 4 + 2
    # Every file inside the archive and the three beside it were checked.
    assert report["files_checked"] == report["images"] + 1 + 3


def test_a_tampered_member_is_named(service: KioskService, case: str, tmp_path: Path,
                                    run_cli: Cli) -> None:
    folder, passphrase = _export(service, case, tmp_path)
    name = flip_ciphertext_byte(folder / "IMAGES.zip")
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 4
    assert f"{name}: it failed its integrity check (HMAC)" in err
    assert err.count("\n  ") == 1  # that file only


def test_a_changed_manifest_breaks_the_signature(service: KioskService, case: str,
                                                 tmp_path: Path, run_cli: Cli) -> None:
    folder, passphrase = _export(service, case, tmp_path)

    def edit(data: dict[str, bytes]) -> None:
        manifest = json.loads(data["MANIFEST.JSON"])
        manifest["kiosk_id"] = "someone-else"
        data["MANIFEST.JSON"] = json.dumps(manifest).encode()

    _rewrite(folder, passphrase, edit)
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 4
    assert "MANIFEST.JWS: MANIFEST.JSON was changed after the kiosk signed it" in err


def test_a_replaced_image_with_a_re_signed_manifest_fails_against_the_pinned_key(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    """A forger who re-signs with their own key passes only the unpinned check."""
    from kiosk.links.manifest_signature import ManifestSigner

    folder, passphrase = _export(service, case, tmp_path)
    forger = ManifestSigner(load_or_create(tmp_path / "forger.pem"))

    def edit(data: dict[str, bytes]) -> None:
        manifest = json.loads(data["MANIFEST.JSON"])
        manifest["case_id"] = "FORGED"
        data["MANIFEST.JSON"] = json.dumps(manifest).encode()
        data["MANIFEST.JWS"] = forger.sign(data["MANIFEST.JSON"])

    _rewrite(folder, passphrase, edit)
    code, out, _ = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 0 and forger.fingerprint in out  # the fingerprint gives it away
    pem = tmp_path / "pub.pem"
    pem.write_text(run_cli("link", "pubkey")[1])
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase,
                           "--key", str(pem))
    assert code == 4 and "MANIFEST.JSON is signed by another key" in err


def test_a_changed_opener_page_beside_the_archive_is_named(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    folder, passphrase = _export(service, case, tmp_path)
    page = folder / "OPEN_IMAGES.html"
    page.write_bytes(page.read_bytes().replace(b"</body>", b"<script>steal()</script></body>"))
    (folder / "LICENSES.TXT").unlink()
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 4
    assert "OPEN_IMAGES.html: changed since the kiosk signed the manifest" in err
    assert "LICENSES.TXT: missing" in err


def test_a_missing_part_of_a_split_package_is_named(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    folder, passphrase = _export(service, case, tmp_path, split_size=64 << 10)
    parts = sorted(folder.glob("IMAGES.zip.*"))
    assert len(parts) >= 2
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 0, err
    hidden = tmp_path / "hidden"
    parts[0].rename(hidden)
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 4 and "IMAGES.zip.001 is missing" in err
    hidden.rename(parts[0])
    parts[-1].unlink()  # the last part: nothing after it says it existed
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", passphrase)
    assert code == 4 and f"the part after {parts[-2].name} may be missing" in err


def test_a_wrong_passphrase_or_none_is_a_clear_usage_error(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    folder, _ = _export(service, case, tmp_path)
    code, _, err = run_cli("package", "verify", str(folder), "--passphrase", "WRONG-PASS")
    assert code == 2 and "does not open this package" in err and "Traceback" not in err
    code, _, err = run_cli("package", "verify", str(folder))
    assert code == 2 and "--passphrase" in err
    code, _, err = run_cli("package", "verify", str(tmp_path / "nope"), "--passphrase", "x")
    assert code == 2 and "is not a folder" in err
    code, _, err = run_cli("package", "verify", str(tmp_path / "disc"))
    assert code == 2 and "holds no MedPass package" in err


def test_a_plain_package_verifies_and_names_a_changed_or_unsigned_file(
        service: KioskService, case: str, tmp_path: Path, run_cli: Cli) -> None:
    folder, _ = _export(service, case, tmp_path, encrypt=False)
    assert (folder / "OPEN_IMAGES.html").is_file()  # the page opens the folder too
    code, out, err = run_cli("package", "verify", str(folder))
    assert code == 0 and out.startswith("Verified: "), err
    image = next(p for p in (folder / "PT000000").rglob("*") if p.is_file())
    image.write_bytes(image.read_bytes() + b"\0")
    (folder / "MANIFEST.JWS").unlink()
    shutil.rmtree(folder / "REPORTS", ignore_errors=True)
    code, _, err = run_cli("package", "verify", str(folder))
    assert code == 4
    assert f"{image.relative_to(folder).as_posix()}: changed since" in err
    assert "MANIFEST.JWS: missing: the package is not signed" in err
