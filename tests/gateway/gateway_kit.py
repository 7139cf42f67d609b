"""What the gateway tests share: kiosk keys and tokens, share ids, basic-auth headers.

Tokens are minted with the kiosk's own minter (:class:`kiosk.links.tokens.KioskTokenMinter`),
exactly as a desk mints them offline.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.links import jwt_tokens
from kiosk.links.tokens import KioskTokenMinter, new_share_id

KIOSK_USER, KIOSK_PASSWORD = "desk-01", "kiosk-password-123"
ADMIN_USER, ADMIN_PASSWORD = "office", "admin-password-456"


@dataclass(frozen=True)
class KioskKey:
    """A kiosk's Ed25519 key pair and id, as ``kiosk link pubkey`` would give the office."""

    kiosk_id: str
    private_pem: bytes
    public_pem: str

    @classmethod
    def new(cls, kiosk_id: str = "desk-01") -> KioskKey:
        """A fresh key pair."""
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(kiosk_id, pem, public)

    def write_public(self, folder: Path) -> Path:
        """The public key as a PEM file (what ``--trust-key`` takes)."""
        path = folder / f"{self.kiosk_id}.pub.pem"
        path.write_text(self.public_pem, encoding="utf-8")
        return path

    def token(self, studies: list[str], *, case_id: str = "C-0001", days: int = 30,
              now: datetime | None = None) -> str:
        """A kiosk token for ``studies`` valid ``days`` from ``now``."""
        minter = KioskTokenMinter(self.kiosk_id, self.private_pem, "{token}", days)
        return minter.mint(case_id, studies, now=now).token

    def expired_token(self, studies: list[str]) -> str:
        """A token signed by this key whose expiry has passed."""
        return self.token(studies, days=1, now=datetime.now(UTC) - timedelta(days=3))


def share_id() -> str:
    """A link id as the kiosk makes it: 128 random bits, lower-case base32, 26 characters."""
    return new_share_id()


def basic(user: str, password: str) -> str:
    """An ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hs256_token(studies: list[str]) -> str:
    """A token of the orthanc-share kind: a gateway holds no shared secret, so never accepted."""
    return jwt_tokens.sign({"jti": "x", "exp": 4102444800, "studies": studies},
                           "s" * 40, jwt_tokens.HS256)
