"""The coordinator PIN as the desk uses it: every change and every attempt audited.

:class:`~kiosk.security.pin.PinStore` keeps the hash and the lockout; this adds what the trail must
say about it (never the PIN), the purposes a PIN is asked for, and the one-time migration of a
plain ``ui.admin_pin`` from the configuration.
"""

from __future__ import annotations

import logging
from typing import Any

from kiosk.errors import UsageError
from kiosk.security.audit import AuditLog
from kiosk.security.pin import PinCheck, PinStatus, PinStore

log = logging.getLogger(__name__)

#: What the coordinator PIN is asked for: Admin, and each override of a safety check.
PIN_PURPOSES = ("admin", "unencrypted_export", "force_purge", "keep_patients")


class PinGuard:
    """The PIN store and the audit trail together."""

    def __init__(self, pins: PinStore, audit: AuditLog) -> None:
        self.pins = pins
        self.audit = audit

    def status(self) -> PinStatus:
        """Whether a coordinator PIN is set, and the lockout (never the PIN)."""
        return self.pins.status()

    def set(self, pin: str, *, source: str, allow_weak: bool = False) -> None:
        """Store a new coordinator PIN (hashed) and audit that it changed (not the PIN).

        ``source`` says who set it: ``ui`` (first start), ``admin``, ``cli``, ``config``
        (migrated from ``ui.admin_pin``) or ``demo``.

        Raises
        ------
        PinError
            Not 4-12 digits, or too easy to guess (unless ``allow_weak``).
        """
        replaced = self.pins.is_set()
        self.pins.set(pin, allow_weak=allow_weak)
        self.audit.append("pin_set", source=source, replaced=replaced)

    def check(self, pin: str, purpose: str, *, case_id: str | None = None) -> PinCheck:
        """Check a typed coordinator PIN for ``purpose`` (one of :data:`PIN_PURPOSES`).

        Every attempt is audited as ``admin_login`` with ``ok``, the purpose and, for an
        override, the case; attempts refused by the lockout say ``locked``.

        Raises
        ------
        PinError
            No PIN is set yet.
        UsageError
            Unknown purpose.
        """
        if purpose not in PIN_PURPOSES:
            raise UsageError(f"Unknown PIN purpose {purpose!r}.")
        result = self.pins.check(pin)
        details: dict[str, Any] = {"ok": result.ok, "purpose": purpose}
        if case_id is not None:
            details["case_id"] = case_id
        if result.locked_seconds and not result.ok:
            details["locked_seconds"] = result.locked_seconds
        self.audit.append("admin_login", **details)
        return result

    def matches(self, pin: str) -> bool:
        """Whether ``pin`` is the PIN in force, without counting a failure (the demo's hint)."""
        return self.pins.matches(pin)

    def migrate_plain(self, plain: str | None) -> bool:
        """Hash a plain PIN from the configuration (``ui.admin_pin``) when none is stored yet.

        Returns whether it did. Either way, while the key is still in the file, a warning
        asks to remove it: the stored hash is what counts from now on.
        """
        if not plain:
            return False
        migrated = False
        if not self.pins.is_set():
            self.set(plain, source="config", allow_weak=True)
            migrated = True
        log.warning("ui.admin_pin is set in the configuration: the coordinator PIN is now "
                    "stored hashed in %s. Remove ui.admin_pin from the file.", self.pins.path)
        return migrated
