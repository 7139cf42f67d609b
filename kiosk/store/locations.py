"""Every place on disk the kiosk reads or writes, in one module.

Layout under the data directory::

    kiosk.json        tinydb database: global tables (see kiosk.store.layout)
    cases/            tinydb, one file per case (cases, studies, jobs, reports, links, outbox)
    index/            the compact case index and id locators
    audit.jsonl       append-only, hash-chained audit trail
    blobs/ab/cdef...  content-addressed files (SHA-256 of the bytes)
    tmp/              staging for blobs being written; emptied at start-up
    inbox/            office inbox: translated reports dropped here
    logs/             log files
    keys/link-ed25519.pem   this kiosk's link-signing key (private, mode 0600)
    keys/coordinator-pin.json   the coordinator PIN as a scrypt hash, and its lockout (0600)
    link/revoked.txt  revoked link tokens and kiosks (one per line)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "medpass-kiosk"


def default_data_dir(env: dict[str, str] | None = None) -> Path:
    """``$KIOSK_DATA_DIR``, else ``$XDG_DATA_HOME/medpass-kiosk``, else ``~/.local/share/...``."""
    env = dict(os.environ) if env is None else env
    if env.get("KIOSK_DATA_DIR"):
        return Path(env["KIOSK_DATA_DIR"])
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / APP_NAME


def default_config_file(env: dict[str, str] | None = None) -> Path | None:
    """``$KIOSK_CONFIG`` if set, else ``/etc/medpass-kiosk/kiosk.toml`` if it exists."""
    env = dict(os.environ) if env is None else env
    if env.get("KIOSK_CONFIG"):
        return Path(env["KIOSK_CONFIG"])
    system = Path("/etc") / APP_NAME / "kiosk.toml"
    return system if system.exists() else None


@dataclass(frozen=True)
class Locations:
    """Paths derived from one data directory."""

    data_dir: Path

    @property
    def db_file(self) -> Path:
        """The tinydb database file."""
        return self.data_dir / "kiosk.json"

    @property
    def blobs_dir(self) -> Path:
        """Root of the content-addressed store."""
        return self.data_dir / "blobs"

    @property
    def tmp_dir(self) -> Path:
        """Staging area for blobs; same filesystem as ``blobs_dir`` so renames are atomic."""
        return self.data_dir / "tmp"

    @property
    def audit_file(self) -> Path:
        """The append-only, hash-chained audit trail."""
        return self.data_dir / "audit.jsonl"

    @property
    def inbox_dir(self) -> Path:
        """Office inbox for translated reports."""
        return self.data_dir / "inbox"

    @property
    def logs_dir(self) -> Path:
        """Log files."""
        return self.data_dir / "logs"

    @property
    def keys_dir(self) -> Path:
        """Private keys of this kiosk (mode 0700; each key file 0600)."""
        return self.data_dir / "keys"

    @property
    def link_key_file(self) -> Path:
        """The Ed25519 key that signs this kiosk's link tokens; made on first start."""
        return self.keys_dir / "link-ed25519.pem"

    @property
    def pin_file(self) -> Path:
        """The coordinator PIN (scrypt hash, salt, lockout state); mode 0600."""
        return self.keys_dir / "coordinator-pin.json"

    @property
    def revocation_file(self) -> Path:
        """Default list of revoked link tokens and kiosks (``link.revocation_list`` overrides)."""
        return self.data_dir / "link" / "revoked.txt"

    def ensure(self) -> None:
        """Create the directories (private to the kiosk user: patient data lives here)."""
        for d in (self.data_dir, self.blobs_dir, self.tmp_dir, self.inbox_dir, self.logs_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
