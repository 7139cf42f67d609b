"""The page's manifest module (src/manifest) against the spec of docs/viewer.md, with JWSs made
here by `cryptography`'s Ed25519 (not the kiosk's signer, so a shared mistake would show), and
its Custody's verdicts for each kind of problem."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.viewer.browser_kit import OpenedPage, close, open_page


def b64url(data: bytes) -> str:
    """RFC 7515 base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def fingerprint(raw: bytes) -> str:
    """docs/viewer.md: SHA-256 of the raw key, upper-case hex in groups of four."""
    digest = hashlib.sha256(raw).hexdigest().upper()
    return " ".join(digest[i:i + 4] for i in range(0, 64, 4))


def detached_jws(manifest: bytes, key: Ed25519PrivateKey, **header: Any) -> str:
    """A detached compact JWS (RFC 7515 Appendix F, RFC 8037) of ``manifest``; ``header``
    entries replace the spec's ones (alg, kid, jwk)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    fields: dict[str, Any] = {"alg": "EdDSA", "kid": fingerprint(raw),
                              "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}}
    fields.update(header)
    protected = b64url(json.dumps(fields).encode())
    signature = key.sign(f"{protected}.{b64url(manifest)}".encode("ascii"))
    return f"{protected}..{b64url(signature)}"


@pytest.fixture(scope="module")
def opened(viewer_browser: Any) -> Iterator[OpenedPage]:
    page = open_page(viewer_browser)
    yield page
    assert page.outside_requests() == []
    close(page)


CHECK = """async ([jws, manifest]) => medpassLib.manifest.checkSignature(jws,
    new TextEncoder().encode(manifest))"""

MANIFEST = json.dumps({"format": "medpass-kiosk-package/1", "kiosk_id": "kiosk-7",
                       "patients": [{"name": "LI^Hua=李^华"}], "files": []},
                      ensure_ascii=False)


def test_a_good_signature_gives_the_keys_fingerprint(opened: OpenedPage) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jws = detached_jws(MANIFEST.encode(), key)
    got = opened.page.evaluate(CHECK, [jws, MANIFEST])
    assert got == {"fingerprint": fingerprint(raw), "problem": None}
    assert opened.page.evaluate("async (hex) => medpassLib.manifest.fingerprintOf("
                                "Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16)))",
                                raw.hex()) == fingerprint(raw)


@pytest.mark.parametrize("case", ["edited", "kid", "alg", "attached", "short-key", "garbage"])
def test_a_bad_signature_is_a_problem(opened: OpenedPage, case: str) -> None:
    key = Ed25519PrivateKey.generate()
    manifest = MANIFEST
    jws = detached_jws(MANIFEST.encode(), key)
    if case == "edited":
        manifest = MANIFEST.replace("kiosk-7", "kiosk-8")
    elif case == "kid":
        jws = detached_jws(MANIFEST.encode(), key, kid=fingerprint(b"\0" * 32))
    elif case == "alg":
        jws = detached_jws(MANIFEST.encode(), key, alg="none")
    elif case == "attached":
        head, _, sig = jws.split(".")
        jws = f"{head}.{b64url(MANIFEST.encode())}.{sig}"
    elif case == "short-key":
        jws = detached_jws(MANIFEST.encode(), key,
                           jwk={"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\1" * 31)})
    else:
        jws = "not a jws at all"
    got = opened.page.evaluate(CHECK, [jws, manifest])
    assert isinstance(got["problem"], str) and got["problem"]


CUSTODY = """([manifest, signature, names, reads, finish]) => {
  const c = new medpassLib.manifest.Custody({manifest, signature, names});
  let events = 0; c.addEventListener('change', () => events++);
  const before = c.summary().state;
  for (const [path, sha, size] of reads) c.record(path, sha, size);
  if (finish) c.finish();
  return {before, after: c.summary(), events, pending: c.pending()}; }"""


def files(*names: str) -> list[dict[str, Any]]:
    return [{"path": n, "size": 3, "sha256": hashlib.sha256(n[-3:].encode()).hexdigest(),
             "kind": "dicom"} for n in names]


def test_custody_verifies_only_when_every_file_matches(opened: OpenedPage) -> None:
    manifest = {"kiosk_id": "k", "created": "2026-01-01T00:00:00Z",
                "files": files("A/001", "A/002"),
                "reports": [{"role": "original"}, {"role": "translation"}]}
    signature = {"fingerprint": "AB12", "problem": None}
    names = ["A/001", "A/002", "MANIFEST.JSON", "MANIFEST.JWS"]
    good = [[f["path"], f["sha256"], 3] for f in manifest["files"]]
    got = opened.page.evaluate(CUSTODY, [manifest, signature, names, good[:1], False])
    assert got["before"] == "checking" and got["after"]["state"] == "checking"
    assert got["pending"] == ["A/002"] and got["after"]["checked"] == 1
    got = opened.page.evaluate(CUSTODY, [manifest, signature, names, good, True])
    after = got["after"]
    assert after["state"] == "verified" and after["problems"] == [] and got["events"] == 3
    assert (after["images"], after["originals"], after["translations"]) == (2, 1, 1)
    assert after["bytesChecked"] == 6 and after["fingerprint"] == "AB12"


def test_custody_names_each_file_that_does_not_match(opened: OpenedPage) -> None:
    manifest = {"files": files("A/001", "A/002", "A/003", "A/004")}
    signature = {"fingerprint": "AB12", "problem": None}
    names = ["A/001", "A/002", "A/003", "EXTRA", "MANIFEST.JSON", "MANIFEST.JWS"]
    f = manifest["files"]
    reads = [["A/001", f[0]["sha256"], 3], ["A/002", "0" * 64, 3], ["A/003", None, 3]]
    got = opened.page.evaluate(CUSTODY, [manifest, signature, names, reads, True])
    assert got["after"]["state"] == "warning"
    assert {(p["path"], p["problem"]) for p in got["after"]["problems"]} == {
        ("A/002", "changed"), ("A/003", "damaged"), ("A/004", "missing"), ("EXTRA", "unlisted")}
    # A stranger's signature: the files may all match, the package is still not verified.
    bad = {"fingerprint": "AB12", "problem": "the signature does not match MANIFEST.JSON"}
    got = opened.page.evaluate(CUSTODY, [{"files": f[:1]}, bad, ["A/001"],
                                         [["A/001", f[0]["sha256"], 3]], True])
    assert got["after"]["state"] == "warning"
    assert [p["path"] for p in got["after"]["problems"]] == ["MANIFEST.JWS"]
    # No signature at all: unsigned, whatever the hashes say.
    got = opened.page.evaluate(CUSTODY, [{"files": f[:1]}, None, ["A/001"],
                                         [["A/001", f[0]["sha256"], 3]], True])
    assert got["after"]["state"] == "unsigned"
