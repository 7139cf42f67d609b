"""The gateway's settings: the ``MedPassGateway`` section of the generated ``orthanc.json``.

``kiosk gateway config`` writes them; the plugin reads them back from Orthanc's configuration,
so every Orthanc process started from the same file (or a copy of it) behaves the same and
keys its client hashes with the same secret.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kiosk.errors import ConfigError

SECTION = "MedPassGateway"


@dataclass(frozen=True)
class Limits:
    """Rate limits, per minute, counted in the database (so across every process)."""

    #: Requests of one client (a keyed hash of its address) to phone routes.
    client: int = 1200
    #: Requests to one share's routes, whoever makes them.
    share: int = 6000
    #: Session attempts (passcode tries included) of one client.
    client_sessions: int = 10


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the plugin needs besides Orthanc's own settings."""

    public_url: str
    kiosk_user: str
    kiosk_password: str
    admin_user: str
    admin_password: str
    trust_keys: tuple[str, ...]
    #: ``sqlite:///PATH`` or ``postgresql://…`` (the gateway's own tables).
    database: str
    #: ``token ID`` / ``kiosk ID`` lines: tokens or whole kiosks the office no longer trusts.
    revocation_file: str
    #: Hex key of the client-address hashes used for rate limits.
    client_key_secret: str
    #: The phone page (the viewer room's ``SHARE.html``); a placeholder while it is missing.
    share_page: str
    #: Peers whose ``X-Forwarded-For`` names the real client (nginx on this host).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    passcode_attempts: int = 5
    session_hours: float = 12.0
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> dict[str, Any]:
        """The section as written into ``orthanc.json``."""
        data = asdict(self)
        data["trust_keys"] = list(self.trust_keys)
        data["trusted_proxies"] = list(self.trusted_proxies)
        return data

    @classmethod
    def from_json(cls, data: Any) -> GatewaySettings:
        """Read the section back.

        Raises
        ------
        ConfigError
            The section is missing or a value has the wrong type.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"orthanc.json has no {SECTION} section: write it with "
                              "`kiosk gateway config`.")
        try:
            limits = Limits(**data.get("limits", {}))
            values = {**data, "limits": limits,
                      "trust_keys": tuple(data["trust_keys"]),
                      "trusted_proxies": tuple(data.get("trusted_proxies",
                                                        ("127.0.0.1", "::1")))}
            settings = cls(**values)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"The {SECTION} section of orthanc.json is incomplete or "
                              f"malformed ({exc}).") from None
        if not settings.trust_keys:
            raise ConfigError(f"The {SECTION} section trusts no kiosk key.")
        return settings
