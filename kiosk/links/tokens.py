"""Cloud links, minted offline: two token kinds behind one interface, and their verification.

The QR must exist before the upload lands, so the kiosk mints the link itself; the link goes live
when the study reaches the cloud. Two kinds, chosen with ``link.kind``:

``orthanc-share``
    An HS256 JWT whose claims are orthanc-auth-service's ``TokenCreationRequest`` (``id``,
    ``resources`` = one ``{"dicom_uid", "level": "study"}`` per study, ``type``,
    ``expiration_date`` in ISO 8601). A stock Orthanc + orthanc-auth-service + OHIF/Stone cloud
    sharing the same secret serves the link with nothing written by us.
``kiosk``
    An EdDSA (Ed25519) JWT signed with this kiosk's own key: ``iss`` (kiosk id), ``jti`` (token
    id), ``iat``, ``exp``, ``case`` and ``studies``. A gateway checks it with the public key
    (``kiosk link pubkey``) and ``kiosk link verify``; no secret is shared with the cloud.

A link expires at the end of the local day ``expiry_days`` after minting, so the date printed on
the slip is the last day it works.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

from kiosk.errors import ConfigError, LinkTokenError, UsageError
from kiosk.links import jwt_tokens

KIOSK_KIND, ORTHANC_KIND = "kiosk", "orthanc-share"


@dataclass(frozen=True)
class Link:
    """A minted link: what the QR holds, the slip prints and the screen shows."""

    url: str
    token: str
    token_id: str
    kind: str
    case_id: str
    study_uids: tuple[str, ...]
    #: The instant the token stops working (timezone-aware).
    expires: datetime
    #: Short links: the id in ``{base}/s/{id}`` (the gateway knows the token by it).
    share_id: str | None = None
    #: Short links with ``link.passcode``: the 6 digits on the slip, never in the QR.
    passcode: str | None = None

    @property
    def expiry_date(self) -> str:
        """The last day the link works, in the kiosk's local time (``2026-12-27``)."""
        return self.expires.astimezone().date().isoformat()


@dataclass(frozen=True)
class TokenClaims:
    """What a token says, once its signature has been checked."""

    kind: str
    token_id: str
    study_uids: tuple[str, ...]
    expires: datetime
    #: Only kiosk tokens name their kiosk and case.
    kiosk_id: str | None = None
    case_id: str | None = None


class LinkMinter(Protocol):
    """Makes signed, expiring links for studies, offline."""

    kind: str

    def mint(self, case_id: str, study_uids: Sequence[str], *,
             now: datetime | None = None) -> Link:
        """Return a new link granting ``study_uids``.

        Raises
        ------
        UsageError
            ``study_uids`` is empty.
        """
        ...


def expiry_after(now: datetime, days: int) -> datetime:
    """The end (23:59:59 local time) of the day ``days`` after ``now``."""
    local = now.astimezone()
    last_day = local.date() + timedelta(days=days)
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=local.tzinfo)


def new_token_id() -> str:
    """A random token id (96 bits, URL-safe): revocation and audit refer to it."""
    return secrets.token_urlsafe(12)


def new_share_id() -> str:
    """A short link's id: 128 random bits, lower-case base32 without padding (26 characters).

    Lower case and ``a-z2-7`` only, so it survives being read aloud, typed, and case-folding
    QR scanners; the gateway accepts exactly this form.
    """
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def new_passcode() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def _fill(template: str, token: str, study_uids: Sequence[str]) -> str:
    # Study UIDs are digits and dots, tokens base64url and dots: nothing needs escaping.
    return template.format(token=token, study_uid=",".join(study_uids))


def _check_studies(study_uids: Sequence[str]) -> tuple[str, ...]:
    if not study_uids:
        raise UsageError("There is no study to link to: import the case's images first.")
    return tuple(study_uids)


class _Minter:
    """What both minters share: the checks, the expiry, the token id and the URL."""

    kind: str
    template: str
    expiry_days: int

    #: Short links: the origin of ``{base}/s/{id}`` (None: the token goes in the template).
    short_base: str | None = None
    passcode: bool = False

    def mint(self, case_id: str, study_uids: Sequence[str], *,
             now: datetime | None = None) -> Link:
        """Return a new link granting ``study_uids`` (see :class:`LinkMinter`)."""
        studies = _check_studies(study_uids)
        now = now or datetime.now(UTC)
        expires = expiry_after(now, self.expiry_days)
        token_id = new_token_id()
        token = self._sign(case_id, studies, now, expires, token_id)
        if self.short_base is None:
            return Link(url=_fill(self.template, token, studies), token=token,
                        token_id=token_id, kind=self.kind, case_id=case_id,
                        study_uids=studies, expires=expires)
        share_id = new_share_id()
        return Link(url=f"{self.short_base}/s/{share_id}", token=token, token_id=token_id,
                    kind=self.kind, case_id=case_id, study_uids=studies, expires=expires,
                    share_id=share_id, passcode=new_passcode() if self.passcode else None)

    def _sign(self, case_id: str, studies: tuple[str, ...], now: datetime, expires: datetime,
              token_id: str) -> str:
        raise NotImplementedError


class KioskTokenMinter(_Minter):
    """The kiosk's own Ed25519-signed token.

    Parameters
    ----------
    kiosk_id : str
        Goes into ``iss``; revoking it revokes every link of this kiosk.
    private_pem : bytes
        The kiosk's Ed25519 private key (see :mod:`kiosk.links.signing_key`).
    template : str
        URL template with ``{token}`` and optionally ``{study_uid}``, or, for short links,
        ``{base}/s/{id}``.
    expiry_days : int
        Days the link stays valid.
    short_base : str, optional
        Short links: the gateway's origin; the QR holds ``{short_base}/s/{id}`` and the token
        reaches the gateway through the outbox.
    passcode : bool
        Short links: give each a 6-digit passcode.
    """

    kind = KIOSK_KIND

    def __init__(self, kiosk_id: str, private_pem: bytes, template: str,
                 expiry_days: int, *, short_base: str | None = None,
                 passcode: bool = False) -> None:
        self.kiosk_id = kiosk_id
        self._private_pem = private_pem
        self.template = template
        self.expiry_days = expiry_days
        self.short_base = short_base.rstrip("/") if short_base else None
        self.passcode = passcode

    def _sign(self, case_id: str, studies: tuple[str, ...], now: datetime, expires: datetime,
              token_id: str) -> str:
        claims = {"iss": self.kiosk_id, "jti": token_id, "iat": int(now.timestamp()),
                  "exp": int(expires.timestamp()), "case": case_id, "studies": list(studies)}
        return jwt_tokens.sign(claims, self._private_pem, jwt_tokens.EDDSA)


class OrthancShareMinter(_Minter):
    """orthanc-auth-service share tokens (HS256, shared secret).

    Parameters
    ----------
    secret : str
        orthanc-auth-service's ``SECRET_KEY``.
    token_type : str
        The publication type, i.e. the viewer (``ohif-viewer-publication``, ...).
    template : str
        URL template with ``{token}`` and optionally ``{study_uid}``.
    expiry_days : int
        Days the link stays valid.
    """

    kind = ORTHANC_KIND

    def __init__(self, secret: str, token_type: str, template: str, expiry_days: int) -> None:
        self._secret = secret
        self.token_type = token_type
        self.template = template
        self.expiry_days = expiry_days

    def _sign(self, case_id: str, studies: tuple[str, ...], now: datetime, expires: datetime,
              token_id: str) -> str:
        # Exactly the TokenCreationRequest fields the service validates; it parses
        # expiration_date with pydantic and compares it with an aware UTC "now".
        claims = {
            "id": token_id,
            "resources": [{"dicom_uid": uid, "level": "study"} for uid in studies],
            "type": self.token_type,
            "expiration_date": expires.astimezone(UTC).isoformat(),
        }
        return jwt_tokens.sign(claims, self._secret, jwt_tokens.HS256)


@dataclass(frozen=True)
class RevocationList:
    """Revoked token ids and kiosk ids.

    The file has one entry per line: ``token ID``, ``kiosk ID``, or a bare token id; ``#``
    starts a comment.
    """

    token_ids: frozenset[str] = frozenset()
    kiosk_ids: frozenset[str] = frozenset()

    @classmethod
    def read(cls, path: Path) -> RevocationList:
        """Read the list; a missing file is an empty list.

        Raises
        ------
        ConfigError
            The file exists but cannot be read or has a line of another form. A gateway must
            not accept tokens while its revocation list is unreadable.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Revocation list {path} cannot be read: {exc}.") from None
        tokens: set[str] = set()
        kiosks: set[str] = set()
        for number, raw in enumerate(text.splitlines(), 1):
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) == 1:
                tokens.add(words[0])
            elif len(words) == 2 and words[0] in ("token", "kiosk"):
                (tokens if words[0] == "token" else kiosks).add(words[1])
            else:
                raise ConfigError(f"Revocation list {path}, line {number}: expected "
                                  f"'token ID' or 'kiosk ID', found {raw.strip()!r}.")
        return cls(frozenset(tokens), frozenset(kiosks))


class LinkVerifier:
    """Checks link tokens of either kind: signature, revocation, expiry and study.

    Parameters
    ----------
    public_pem : str or None
        Ed25519 public key for kiosk tokens.
    secret : str or None
        orthanc-auth-service secret for share tokens.
    revocation_file : Path
        The revocation list, re-read on every check so an edit takes effect at once.
    """

    def __init__(self, public_pem: str | None, secret: str | None,
                 revocation_file: Path) -> None:
        self.public_pem = public_pem
        self.secret = secret
        self.revocation_file = revocation_file

    def verify(self, token: str, *, study_uid: str | None = None,
               now: datetime | None = None) -> TokenClaims:
        """Return the claims of a token that is valid now (for ``study_uid`` when given).

        Raises
        ------
        LinkTokenError
            With ``reason`` ``malformed``, ``signature``, ``key`` (no key or secret to check
            this kind here), ``revoked``, ``expired`` or ``study``.
        ConfigError
            The revocation list cannot be read.
        """
        token = token.strip()
        alg = jwt_tokens.algorithm_of(token)
        if alg == jwt_tokens.EDDSA:
            if not self.public_pem:
                raise LinkTokenError("No Ed25519 public key to check kiosk tokens with.",
                                     reason="key")
            claims = _kiosk_claims(jwt_tokens.verify(
                token, self.public_pem, jwt_tokens.EDDSA,
                required=("iss", "jti", "exp", "case", "studies")))
        elif alg == jwt_tokens.HS256:
            if not self.secret:
                raise LinkTokenError("This is an orthanc-auth-service share token; set "
                                     "link.orthanc_secret (or KIOSK_LINK_SECRET) to check it.",
                                     reason="key")
            claims = _orthanc_claims(jwt_tokens.verify(
                token, self.secret, jwt_tokens.HS256,
                required=("id", "resources", "expiration_date")))
        else:
            raise LinkTokenError(f"Tokens signed with {alg} are not link tokens.",
                                 reason="signature")
        _check_valid(claims, RevocationList.read(self.revocation_file), study_uid,
                     now or datetime.now(UTC))
        return claims


def _malformed(what: str) -> LinkTokenError:
    return LinkTokenError(f"The token's {what} is missing or malformed.", reason="malformed")


def _uids(values: object) -> tuple[str, ...]:
    if not isinstance(values, list) or not values or \
            not all(isinstance(v, str) and v for v in values):
        raise _malformed("study list")
    return tuple(values)


def _kiosk_claims(raw: dict[str, object]) -> TokenClaims:
    exp, jti, iss, case = raw["exp"], raw["jti"], raw["iss"], raw["case"]
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _malformed("expiry")
    if not (isinstance(jti, str) and isinstance(iss, str) and isinstance(case, str)):
        raise _malformed("token, kiosk or case id")
    return TokenClaims(kind=KIOSK_KIND, token_id=jti, study_uids=_uids(raw["studies"]),
                       expires=datetime.fromtimestamp(exp, UTC), kiosk_id=iss, case_id=case)


def _orthanc_claims(raw: dict[str, object]) -> TokenClaims:
    resources = raw["resources"]
    if not isinstance(resources, list):
        raise _malformed("resources list")
    uids = _uids([r.get("dicom_uid") for r in resources
                  if isinstance(r, dict) and r.get("level") == "study"])
    token_id, expiration = raw["id"], raw["expiration_date"]
    if not isinstance(token_id, str):
        raise _malformed("id")
    try:
        expires = datetime.fromisoformat(str(expiration))
    except ValueError:
        raise _malformed("expiration_date") from None
    if expires.tzinfo is None:  # orthanc-auth-service compares with an aware UTC time
        expires = expires.replace(tzinfo=UTC)
    return TokenClaims(kind=ORTHANC_KIND, token_id=token_id, study_uids=uids, expires=expires)


def _check_valid(claims: TokenClaims, revoked: RevocationList, study_uid: str | None,
                 now: datetime) -> None:
    if claims.token_id in revoked.token_ids:
        raise LinkTokenError(f"Token {claims.token_id} has been revoked.", reason="revoked")
    if claims.kiosk_id is not None and claims.kiosk_id in revoked.kiosk_ids:
        raise LinkTokenError(f"Every link from kiosk {claims.kiosk_id} has been revoked.",
                             reason="revoked")
    if now >= claims.expires:
        raise LinkTokenError(f"The link expired on {claims.expires.isoformat()}.",
                             reason="expired")
    if study_uid is not None and study_uid not in claims.study_uids:
        n = len(claims.study_uids)
        raise LinkTokenError(f"The token does not grant study {study_uid} (it grants {n} other "
                             f"{'study' if n == 1 else 'studies'}).", reason="study")
