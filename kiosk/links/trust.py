"""Trust in several kiosks at once: a token is good when any one trusted key signed it.

An office gateway serves the links of every kiosk of the office, each with its own Ed25519 key
(``kiosk link pubkey``), and keeps trusting an old key for a while after a kiosk's key is
rotated. :class:`TrustedKeys` wraps one :class:`~kiosk.links.tokens.LinkVerifier` per key, so
the checks (signature, revocation list, expiry) are the kiosk's own, word for word.

Only the kiosk's own token kind (EdDSA) is accepted here: a gateway holds no shared secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from kiosk.errors import LinkTokenError
from kiosk.links import jwt_tokens
from kiosk.links.tokens import LinkVerifier, TokenClaims


class TrustedKeys:
    """Verifies kiosk link tokens against a set of trusted Ed25519 public keys.

    Parameters
    ----------
    public_pems : sequence of str
        PEM public keys (``kiosk link pubkey``) of the kiosks whose tokens are accepted.
    revocation_file : Path
        The revocation list (``token ID`` / ``kiosk ID`` lines), re-read on every check; a
        missing file revokes nothing.
    """

    def __init__(self, public_pems: Sequence[str], revocation_file: Path) -> None:
        if not public_pems:
            raise ValueError("at least one trusted key is needed")
        self._verifiers = [LinkVerifier(pem, None, revocation_file) for pem in public_pems]

    def __len__(self) -> int:
        return len(self._verifiers)

    def verify(self, token: str, *, now: datetime | None = None) -> TokenClaims:
        """The claims of a kiosk token that a trusted key signed and that is valid now.

        Raises
        ------
        LinkTokenError
            Reason ``signature`` when no trusted key signed it (or it is not a kiosk token),
            ``malformed``, ``revoked`` or ``expired`` as :meth:`LinkVerifier.verify` says.
        ConfigError
            The revocation list cannot be read.
        """
        if jwt_tokens.algorithm_of(token.strip()) != jwt_tokens.EDDSA:
            raise LinkTokenError("Only kiosk tokens (EdDSA) are accepted here.",
                                 reason="signature")
        for verifier in self._verifiers:
            try:
                return verifier.verify(token, now=now)
            except LinkTokenError as exc:
                if exc.reason != "signature":
                    raise  # signed by this key, but expired, revoked or malformed
        raise LinkTokenError("No trusted kiosk key signed this token.", reason="signature")
