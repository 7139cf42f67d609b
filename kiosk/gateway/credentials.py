"""Secrets at the gateway: basic auth, passcode hashes, session cookies, keyed client hashes.

Every comparison of something a client sent with something we hold is constant-time
(:func:`hmac.compare_digest`), and what we keep of a passcode or a session cookie is a hash:
a copy of the database does not open any link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

#: scrypt cost: about 20 ms and 16 MiB a check; the attempt limit does the rest.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
PASSCODE_RE = re.compile(r"[0-9]{6}")
SHARE_ID_RE = re.compile(r"[a-z2-7]{26}")
COOKIE_NAME = "medpass_share"


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether an ``Authorization: Basic …`` header names exactly ``user`` and ``password``."""
    if not header or not user or not password:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, sep, given_password = given.partition(b":")
    # Both halves compared, whatever the first gave: the time says nothing about either.
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return bool(sep) and user_ok and password_ok


def hash_passcode(passcode: str) -> str:
    """A salted scrypt hash of a passcode: ``scrypt$N$r$p$salt$hash`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(passcode.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def passcode_matches(passcode: str, stored: str) -> bool:
    """Whether ``passcode`` is the one ``stored`` (from :func:`hash_passcode`) was made of."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        given = hashlib.scrypt(passcode.encode(), salt=bytes.fromhex(salt), n=int(n),
                               r=int(r), p=int(p), dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(given.hex(), digest)


def new_session_token() -> str:
    """A session cookie value: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a session cookie (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def client_key(secret: bytes, address: str) -> str:
    """A keyed hash of a client's address, for rate limits: the address itself is never kept."""
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:32]


def cookie_values(header: str | None, name: str = COOKIE_NAME) -> list[str]:
    """Every value of cookie ``name`` in a ``Cookie`` header (a client may send several)."""
    values = []
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and value:
            values.append(value.strip().strip('"'))
    return values[:4]


def session_cookie(share_id: str, token: str, max_age: int) -> str:
    """The ``Set-Cookie`` value binding a session to one share's path."""
    return (f"{COOKIE_NAME}={token}; Max-Age={max_age}; Path=/s/{share_id}; HttpOnly; Secure; "
            "SameSite=Strict")
