"""The package's chain of custody: ``MANIFEST.JWS``, the kiosk's signature of ``MANIFEST.JSON``.

A detached compact JWS (RFC 7515 Appendix F), EdDSA with the kiosk's link-signing key, its
public half in the header (``jwk``, RFC 8037) and its fingerprint as ``kid``, so the page on
the stick and ``kiosk package verify`` can check it with nothing else at hand; the doctor
compares the fingerprint with the one printed on the slip and in README.TXT, and an office
pins it (``kiosk link pubkey``). The format is in docs/viewer.md.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from kiosk.errors import ConfigError, LinkTokenError
from kiosk.links.jwt_tokens import EDDSA, sign_detached, unverified_jws_header, verify_detached
from kiosk.links.signing_key import SigningKey, fingerprint, public_pem_from_raw, raw_public_key


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ManifestSigner:
    """Signs package manifests with this kiosk's key."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.fingerprint = fingerprint(key.public_pem)
        self._jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw_public_key(key.public_pem))}

    def sign(self, manifest: bytes) -> bytes:
        """``MANIFEST.JWS`` for the bytes of ``MANIFEST.JSON``."""
        jws = sign_detached(manifest, self._key.private_pem,
                            {"kid": self.fingerprint, "jwk": self._jwk})
        return jws.encode("ascii")


@dataclass(frozen=True)
class SignatureCheck:
    """What the signature of a manifest says."""

    #: Fingerprint of the key that signed it (from its header), when one could be read.
    fingerprint: str | None
    #: Checked against a key the caller trusts (not only the one the signature carries).
    pinned: bool
    #: Why it does not hold; None when it does.
    problem: str | None = None


def check_manifest_signature(jws: bytes, manifest: bytes,
                             trusted_pem: str | None = None) -> SignatureCheck:
    """Check ``MANIFEST.JWS`` against the bytes of ``MANIFEST.JSON``.

    Without ``trusted_pem`` the key in the signature's header is used: that proves the manifest
    is unchanged since that key signed it, and whose key it is the fingerprint tells.
    """
    pinned = trusted_pem is not None
    try:
        text = jws.decode("ascii")
        header = unverified_jws_header(text)
    except (UnicodeDecodeError, LinkTokenError):
        return SignatureCheck(None, pinned, "MANIFEST.JWS is not a signature (JWS)")
    if header.get("alg") != EDDSA:
        return SignatureCheck(None, pinned, f"MANIFEST.JWS is signed with {header.get('alg')!r}, "
                                            "not EdDSA")
    jwk = header.get("jwk")
    try:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("no Ed25519 key")
        x = str(jwk["x"])
        carried = public_pem_from_raw(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    except (ValueError, KeyError, binascii.Error, ConfigError):
        return SignatureCheck(None, pinned, "MANIFEST.JWS carries no Ed25519 public key")
    signer = fingerprint(carried)
    if header.get("kid") != signer:
        return SignatureCheck(signer, pinned, "MANIFEST.JWS names a key fingerprint that is not "
                                              "its key's")
    if trusted_pem is not None and raw_public_key(trusted_pem) != raw_public_key(carried):
        return SignatureCheck(signer, pinned, f"MANIFEST.JSON is signed by another key "
                                              f"({signer}), not the one given "
                                              f"({fingerprint(trusted_pem)})")
    try:
        verify_detached(text, manifest, trusted_pem or carried)
    except LinkTokenError:
        return SignatureCheck(signer, pinned, "MANIFEST.JSON was changed after the kiosk signed "
                                              "it (the signature does not match)")
    return SignatureCheck(signer, pinned)
