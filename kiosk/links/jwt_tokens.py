"""Signed JSON Web Tokens, through PyJWT (the only module that imports it).

Two algorithms are used: ``EdDSA`` (Ed25519) for the kiosk's own link tokens and ``HS256`` for
orthanc-auth-service share tokens. Time claims are checked by the caller against an explicit
``now`` (one rule for both token kinds, testable without waiting 30 days); here only the
signature and the shape are checked.
"""

from __future__ import annotations

import base64
from typing import Any

import jwt

from kiosk.errors import LinkTokenError

EDDSA, HS256 = "EdDSA", "HS256"

_NO_TIME_CHECKS = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def sign(claims: dict[str, Any], key: bytes | str, algorithm: str) -> str:
    """Encode and sign ``claims`` as a compact JWT.

    Parameters
    ----------
    claims : dict
        JSON-serialisable claims.
    key : bytes or str
        PEM private key (EdDSA) or shared secret (HS256).
    algorithm : str
        ``"EdDSA"`` or ``"HS256"``.
    """
    return jwt.encode(claims, key, algorithm=algorithm)


def algorithm_of(token: str) -> str:
    """The ``alg`` of a token's header, read without verifying anything.

    Raises
    ------
    LinkTokenError
        The text is not a JWT (reason ``malformed``).
    """
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise LinkTokenError(f"This is not a link token ({exc}).", reason="malformed") from None
    if not isinstance(alg, str):
        raise LinkTokenError("The token header names no algorithm.", reason="malformed")
    return alg


def verify(token: str, key: bytes | str, algorithm: str,
           required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check the signature of ``token`` and return its claims.

    Parameters
    ----------
    token : str
        The compact JWT.
    key : bytes or str
        PEM public key (EdDSA) or shared secret (HS256).
    algorithm : str
        The only algorithm accepted (never taken from the token: no ``alg`` confusion).
    required : tuple of str
        Claims that must be present.

    Raises
    ------
    LinkTokenError
        Reason ``signature`` when the signature does not match the key (tampered, or signed by
        another kiosk or secret), ``malformed`` when the token cannot be decoded or lacks a
        required claim.
    """
    try:
        options: Any = {**_NO_TIME_CHECKS, "require": list(required)}
        return jwt.decode(token, key, algorithms=[algorithm], options=options)
    except jwt.InvalidSignatureError:
        raise LinkTokenError("The token's signature does not match: it was altered, or it was "
                             "signed by another kiosk or with another secret.",
                             reason="signature") from None
    except jwt.InvalidAlgorithmError:
        raise LinkTokenError(f"The token is not signed with {algorithm}.",
                             reason="signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise LinkTokenError(f"The token lacks the '{exc.claim}' claim.",
                             reason="malformed") from None
    except jwt.PyJWTError as exc:
        raise LinkTokenError(f"The token cannot be decoded ({exc}).", reason="malformed") from None


def sign_detached(payload: bytes, key: bytes, headers: dict[str, Any]) -> str:
    """A detached compact JWS of ``payload`` (RFC 7515 Appendix F), EdDSA.

    The payload is signed base64url-encoded as usual and then left out of the serialisation:
    ``header..signature``. (PyJWT's own detached mode is RFC 7797's unencoded payload, which
    browsers' JOSE code supports less often.)
    """
    full = jwt.api_jws.PyJWS().encode(payload, key, algorithm=EDDSA,
                                      headers={**headers, "typ": None})
    head, _, sig = full.split(".")
    return f"{head}..{sig}"


def unverified_jws_header(jws: str) -> dict[str, Any]:
    """The header of a compact JWS, read without verifying anything.

    Raises
    ------
    LinkTokenError
        The text is not a compact JWS (reason ``malformed``).
    """
    try:
        header = jwt.api_jws.PyJWS().get_unverified_header(jws)
    except jwt.PyJWTError as exc:
        raise LinkTokenError(f"This is not a JWS ({exc}).", reason="malformed") from None
    return dict(header)


def verify_detached(jws: str, payload: bytes, key: bytes | str) -> dict[str, Any]:
    """Check a detached compact JWS (EdDSA only) of ``payload``; return its header.

    Raises
    ------
    LinkTokenError
        Reason ``signature`` when it does not match ``payload`` and ``key``, ``malformed`` when
        it is not a detached compact JWS.
    """
    parts = jws.strip().split(".")
    if len(parts) != 3 or parts[1]:
        raise LinkTokenError("This is not a detached JWS (header..signature).",
                             reason="malformed")
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    try:
        return dict(jwt.api_jws.PyJWS().decode_complete(
            f"{parts[0]}.{body}.{parts[2]}", key, algorithms=[EDDSA])["header"])
    except jwt.InvalidSignatureError:
        raise LinkTokenError("The signature does not match: the signed file was altered, or "
                             "it was signed by another key.", reason="signature") from None
    except jwt.InvalidAlgorithmError:
        raise LinkTokenError("The signature is not EdDSA.", reason="signature") from None
    except jwt.PyJWTError as exc:
        raise LinkTokenError(f"The signature cannot be decoded ({exc}).",
                             reason="malformed") from None
