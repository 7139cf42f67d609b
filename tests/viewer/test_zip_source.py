"""The stick's zip in the page (src/source/zip, src/manifest): real exports made by the kiosk,
opened in Chromium from file:// with every request blocked, against what Python reads."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.links.manifest_signature import ManifestSigner
from kiosk.links.signing_key import load_or_create
from kiosk.package.aeszip import AesZipWriter
from kiosk.service import KioskService
from tests.package_kit import edit_manifest, export_sample, flip_ciphertext_byte, rewrite
from tests.viewer.browser_kit import OpenedPage, close, open_page


@pytest.fixture
def opened(viewer_browser: Any) -> Iterator[OpenedPage]:
    page = open_page(viewer_browser)
    yield page
    assert page.outside_requests() == []  # the page never reaches the network
    close(page)


def pick(opened: OpenedPage, paths: list[Path]) -> None:
    """Hand files to the page as the doctor's file picker does (globalThis.picked)."""
    opened.page.evaluate("""() => { let i = document.getElementById('test-pick');
        if (!i) { i = document.createElement('input'); i.type = 'file'; i.multiple = true;
                  i.id = 'test-pick'; i.hidden = true; document.body.append(i); } }""")
    opened.page.set_input_files("#test-pick", [str(p) for p in paths])
    opened.page.evaluate("() => { globalThis.picked = "
                         "Array.from(document.getElementById('test-pick').files); }")


OPEN = """async (pass) => {
  try { globalThis.src = await medpassLib.zip.openPackage(globalThis.picked, pass);
        return {ok: true, label: src.label}; }
  catch (e) { return {ok: false, code: e.code, en: e.message?.en, zh: e.message?.zh}; } }"""

SETTLED = """() => { const s = globalThis.src.custody.summary();
  return s.state === 'verified' || s.state === 'warning' ? s : null; }"""


def settled(opened: OpenedPage) -> dict[str, Any]:
    """The custody once the background check has finished (or found a problem)."""
    handle = opened.page.wait_for_function(SETTLED, timeout=30_000)
    return dict(handle.json_value())


def test_a_real_export_opens_and_every_image_matches_the_kiosks_bytes(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    entries = package.entries()
    manifest = json.loads(entries["MANIFEST.JSON"])
    pick(opened, [package.folder / n for n in ("IMAGES.zip", "README.TXT", "OPEN_IMAGES.html")])
    assert opened.page.evaluate(OPEN, package.passphrase) == {"ok": True, "label": "IMAGES.zip"}
    tree = opened.page.evaluate("async () => await src.tree()")
    [patient] = tree["patients"]
    assert patient["name"]["ideographic"].replace("^", "") == "李华"
    refs = [i["ref"] for st in patient["studies"] for se in st["series"] for i in se["instances"]]
    images = [f["path"] for f in manifest["files"] if f["kind"] == "dicom"]
    assert sorted(refs) == sorted(images)
    # Each instance as the page decrypts it is the kiosk's file, byte for byte.
    got = opened.page.evaluate("""async (refs) => { const out = {};
        for (const r of refs) { const b = await src.instance(r);
          const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
          out[r] = Array.from(d, x => x.toString(16).padStart(2, '0')).join(''); }
        return out; }""", refs)
    assert got == {r: hashlib.sha256(entries[r]).hexdigest() for r in refs}
    # The chain of custody: signed by this kiosk, every file checked.
    summary = settled(opened)
    assert summary["state"] == "verified", summary["problems"]
    assert summary["fingerprint"] == service.manifest_signer.fingerprint
    assert summary["kioskId"] == manifest["kiosk_id"] and summary["images"] == len(refs)
    assert summary["checked"] == summary["total"] == len(manifest["files"])
    reports = opened.page.evaluate("async () => await src.reports()")
    assert [(r["ref"], r["role"]) for r in reports] == [
        (r["file"], r["role"]) for r in manifest["reports"]]


def test_a_wrong_passphrase_is_said_plainly_in_both_languages(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    pick(opened, [package.folder / "IMAGES.zip"])
    result = opened.page.evaluate(OPEN, "WRONG-PASS-WORD-XXXX-YYYY")
    assert result["ok"] is False and result["code"] == "wrong-passphrase"
    assert "passphrase is not right" in result["en"] and "密码不正确" in result["zh"]


def test_a_split_package_opens_from_its_parts_in_any_order_and_names_a_missing_one(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path, ct_slices=12, size=96, split_size=64 << 10)
    parts = package.volumes()
    assert len(parts) >= 3
    shuffled = parts[:]
    random.Random(7).shuffle(shuffled)
    pick(opened, shuffled)
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    assert settled(opened)["state"] == "verified"
    # A part in the middle: named before the passphrase is asked for.
    pick(opened, [p for p in parts if p != parts[1]])
    described = opened.page.evaluate("() => medpassLib.zip.describeFiles(globalThis.picked)")
    assert described["ok"] is False and described["missing"] == [parts[1].name]
    assert parts[1].name in described["message"]["en"]
    # The last part: nothing names it, but the archive's end is missing.
    pick(opened, parts[:-1])
    result = opened.page.evaluate(OPEN, package.passphrase)
    assert result["code"] == "missing-part" and parts[-2].name in result["en"]


def test_a_tampered_member_is_named_and_not_shown(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    name = flip_ciphertext_byte(package.folder / "IMAGES.zip")
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    summary = settled(opened)
    assert summary["state"] == "warning"
    assert {(p["path"], p["problem"]) for p in summary["problems"]} == {(name, "damaged")}
    shown = opened.page.evaluate("""async (r) => { try { await src.instance(r); return 'shown'; }
        catch (e) { return e.code; } }""", name)
    assert shown == "damaged"


def test_a_changed_manifest_or_a_stranger_s_signature_is_named(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)

    edit_manifest(package, kiosk_id="someone-else")
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    summary = settled(opened)
    assert summary["state"] == "warning"
    problems = [(p["path"], p["problem"]) for p in summary["problems"]]
    assert problems == [("MANIFEST.JWS", "signature")]
    # Re-signed by someone else's key: the signature holds, the fingerprint is not the kiosk's.
    forger = ManifestSigner(load_or_create(tmp_path / "forger.pem"))

    def resign(data: dict[str, bytes]) -> None:
        data["MANIFEST.JWS"] = forger.sign(data["MANIFEST.JSON"])

    rewrite(package, resign)
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    summary = settled(opened)
    assert summary["state"] == "verified"
    assert summary["fingerprint"] == forger.fingerprint != service.manifest_signer.fingerprint


def test_an_added_or_removed_entry_is_named(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    entries = package.entries()
    gone = next(n for n in entries if n.startswith("PT"))

    def edit(data: dict[str, bytes]) -> None:
        del data[gone]
        data["PT000000/EXTRA"] = b"not from the kiosk"

    rewrite(package, edit)
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    problems = {(p["path"], p["problem"]) for p in settled(opened)["problems"]}
    assert problems == {(gone, "missing"), ("PT000000/EXTRA", "unlisted")}


def test_not_a_package_is_said_so(opened: OpenedPage, tmp_path: Path) -> None:
    other = tmp_path / "holiday.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("photo.jpg", b"\xff\xd8 not dicom")
    pick(opened, [other])
    result = opened.page.evaluate(OPEN, "x")
    assert result["code"] == "not-a-package" and "MedPass" in result["en"]
    (tmp_path / "notes.txt").write_text("hello")
    pick(opened, [tmp_path / "notes.txt"])
    described = opened.page.evaluate("() => medpassLib.zip.describeFiles(globalThis.picked)")
    assert described["ok"] is False and "IMAGES.zip" in described["message"]["en"]


def test_save_for_pacs_writes_a_plain_zip_of_the_file_set(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    entries = package.entries()
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    b64 = opened.page.evaluate("""async () => { const chunks = [];
        const ws = new WritableStream({ write(c) { chunks.push(c); } });
        await src.saveForPacs(ws);
        const blob = new Blob(chunks); const b = new Uint8Array(await blob.arrayBuffer());
        let s = '';
        for (let i = 0; i < b.length; i += 32768) {
          s += String.fromCharCode(...b.subarray(i, i + 32768)); }
        return btoa(s); }""")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(b64))) as zf:
        assert zf.testzip() is None  # every CRC right
        saved = {n: zf.read(n) for n in zf.namelist()}
    assert saved == entries and "DICOMDIR" in saved


DIGESTS = """async (refs) => { const out = {};
  for (const r of refs) { const b = await src._read(r, {urgent: true, check: false});
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
    out[r] = Array.from(d, x => x.toString(16).padStart(2, '0')).join(''); }
  return out; }"""


@pytest.mark.skipif(shutil.which("7z") is None, reason="7z (p7zip-full) is not installed")
def test_a_split_zip64_archive_decrypts_to_what_7z_extracts(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    """ZIP64 records on every size, offset and count (the writer's test limit), split into
    parts: each entry the page decrypts is what 7-Zip, not our own reader, extracts."""
    package = export_sample(service, tmp_path, reports=True)
    data = package.entries()
    for volume in package.volumes():
        volume.unlink()
    with AesZipWriter(package.folder, "IMAGES", package.passphrase, split_size=48 << 10,
                      zip64_limit=1) as writer:
        for name, raw in data.items():
            writer.add_file(name, io.BytesIO(raw))
    parts = package.volumes()
    assert len(parts) >= 3
    out = tmp_path / "7z"
    done = subprocess.run(["7z", "x", "-y", f"-p{package.passphrase}", f"-o{out}", str(parts[0])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    by_7z = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in out.rglob("*") if p.is_file()}
    assert set(by_7z) == set(data)
    pick(opened, list(reversed(parts)))
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    assert opened.page.evaluate(DIGESTS, sorted(by_7z)) == by_7z
    assert settled(opened)["state"] == "verified"


def test_a_changed_image_is_flagged_as_it_is_viewed(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    """Re-encrypted with the slip's passphrase (its HMAC holds) but not the kiosk's bytes: the
    viewer's own read names it, before the background check has got there."""
    package = export_sample(service, tmp_path, ct_slices=40)
    manifest = json.loads(package.entries()["MANIFEST.JSON"])
    last = [f["path"] for f in manifest["files"] if f["kind"] == "dicom"][-1]

    def edit(data: dict[str, bytes]) -> None:
        raw = bytearray(data[last])
        raw[-1] ^= 0xFF  # one pixel
        data[last] = bytes(raw)

    rewrite(package, edit)
    pick(opened, [package.folder / "IMAGES.zip"])
    seen = opened.page.evaluate("""async ([pass, ref]) => {
        const source = await medpassLib.zip.openPackage(globalThis.picked, pass);
        globalThis.src = source;
        const bytes = await source.instance(ref);
        return {size: bytes.byteLength, summary: source.custody.summary()}; }""",
                                [package.passphrase, last])
    assert seen["size"] == len(package.entries()[last])  # still shown: the doctor is warned
    summary = seen["summary"]
    assert summary["state"] == "warning" and summary["checked"] < summary["total"]
    assert [(p["path"], p["problem"]) for p in summary["problems"]] == [(last, "changed")]
    # The background check finds nothing else, and does not name it twice.
    final = checked(opened)
    assert final["state"] == "warning"
    assert [(p["path"], p["problem"]) for p in final["problems"]] == [(last, "changed")]


def checked(opened: OpenedPage) -> dict[str, Any]:
    """The custody once the background check has read every file it lists."""
    opened.page.wait_for_function("""() => { const s = src.custody.summary();
        return s.checked === s.total; }""", timeout=30_000)
    return dict(opened.page.evaluate("() => src.custody.summary()"))


def test_an_unsigned_package_says_so_and_still_opens(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    package = export_sample(service, tmp_path)
    rewrite(package, lambda data: data.pop("MANIFEST.JWS"))
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    summary = checked(opened)
    assert summary["state"] == "unsigned" and summary["fingerprint"] == ""
    assert summary["problems"] == []


def test_a_damaged_manifest_is_named_and_the_images_still_open(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    """A flipped byte in MANIFEST.JSON's ciphertext: the images open, the custody says which."""
    package = export_sample(service, tmp_path)
    flip_ciphertext_byte(package.folder / "IMAGES.zip", startswith="MANIFEST.JSON", at=20)
    pick(opened, [package.folder / "IMAGES.zip"])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    tree = opened.page.evaluate("async () => await src.tree()")
    ref = tree["patients"][0]["studies"][0]["series"][0]["instances"][0]["ref"]
    assert opened.page.evaluate("async (r) => (await src.instance(r)).byteLength", ref) > 0
    summary = checked(opened)
    assert summary["state"] == "warning"
    assert ("MANIFEST.JSON", "damaged") in {(p["path"], p["problem"]) for p in summary["problems"]}



def test_an_entry_whose_local_header_is_broken_is_named_not_left_checking(
        opened: OpenedPage, service: KioskService, tmp_path: Path) -> None:
    """The background check reads entries in runs from their local headers: one broken header
    is that file damaged, the others still checked, and the banner comes to rest."""
    package = export_sample(service, tmp_path)
    archive = package.folder / "IMAGES.zip"
    with zipfile.ZipFile(archive) as zf:
        info = [i for i in zf.infolist() if i.filename.startswith("PT")][1]
    raw = bytearray(archive.read_bytes())
    raw[info.header_offset] ^= 0xFF  # its signature
    archive.write_bytes(bytes(raw))
    pick(opened, [archive])
    assert opened.page.evaluate(OPEN, package.passphrase)["ok"]
    summary = checked(opened)
    assert summary["state"] == "warning"
    assert [(p["path"], p["problem"]) for p in summary["problems"]] == [(info.filename, "damaged")]
    shown = opened.page.evaluate("""async (r) => { try { await src.instance(r); return 'shown'; }
        catch (e) { return e.code; } }""", info.filename)
    assert shown == "damaged"
