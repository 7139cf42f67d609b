"""This kiosk's Ed25519 link-signing key: made once, kept private, its public half exportable.

The only module that uses ``cryptography`` for keys. The private key never leaves the data
directory (file mode 0600 in a 0700 folder); gateways get the public key (``kiosk link pubkey``)
and verify tokens with it, so no secret is shared with the cloud.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.errors import ConfigError, StoreError
from kiosk.store.durable import fsync_dir, temp_name


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair as PEM text (what the JWT library takes)."""

    private_pem: bytes
    public_pem: str


def _public_pem(private: Ed25519PrivateKey) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_or_create(path: Path) -> SigningKey:
    """Return the key stored at ``path``, generating it on first use.

    Two processes starting at once (the app and a CLI call) end with the same key: the new key
    is written to a temp file and hard-linked to ``path``, which fails if another process won.

    Raises
    ------
    StoreError
        The key file exists but is not an Ed25519 private key (damaged or replaced).
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        tmp = temp_name(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            # If another process made the key first, keep and use theirs.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    pem = path.read_bytes()
    try:
        loaded = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise StoreError(f"The link-signing key {path} cannot be read ({exc}). Move it aside to "
                         "make a new one; links printed before then stop verifying.") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise StoreError(f"The link-signing key {path} is not an Ed25519 key.")
    return SigningKey(private_pem=pem, public_pem=_public_pem(loaded))


def read_public_key(path: Path) -> str:
    """Read a PEM public key a gateway was given (``kiosk link verify --key FILE``).

    Raises
    ------
    ConfigError
        The file is missing or holds no Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"Public key file {path} does not exist.") from None
    except (OSError, ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"Public key file {path} is not a PEM public key ({exc}).") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"Public key file {path} is not an Ed25519 key.")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def raw_public_key(public_pem: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM (a JWK's ``x``).

    Raises
    ------
    ConfigError
        ``public_pem`` is not an Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"This is not a PEM public key ({exc}).") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("This is not an Ed25519 public key.")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem_from_raw(raw: bytes) -> str:
    """The PEM of an Ed25519 public key from its 32 raw bytes (a JWK's ``x``).

    Raises
    ------
    ConfigError
        ``raw`` is not 32 bytes.
    """
    try:
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ConfigError(f"This is not an Ed25519 public key ({exc}).") from None
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(public_pem: str) -> str:
    """The key's fingerprint as people compare it: SHA-256 of the raw public key, upper-case
    hex in 16 groups of four (``3F2A 9C01 …``), as the slip, README.TXT and the page show it."""
    digest = hashlib.sha256(raw_public_key(public_pem)).hexdigest().upper()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))
