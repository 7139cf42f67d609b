"""Configuration: a TOML file (``--config`` / ``KIOSK_CONFIG``), validated, with defaults.

Every key is declared once below as a dataclass field with its type and default; an unknown key,
a wrong type or a bad value is a :class:`~kiosk.errors.ConfigError` that names the key, so a
typo in ``/etc/medpass-kiosk/kiosk.toml`` is found at start-up, not at the patient's turn.

Cloud settings can be overridden from the environment (``KIOSK_CLOUD_URL``, ``KIOSK_CLOUD_USER``,
``KIOSK_CLOUD_PASSWORD``, ``KIOSK_CLOUD_TOKEN``) so secrets need not live in the file.
"""

from __future__ import annotations

import dataclasses
import os
import string
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError


@dataclass(frozen=True)
class ImportSettings:
    """How media are read and stored."""

    #: Parallel file readers; 2 keeps a Pi's two busiest cores on hashing and copying.
    workers: int = 2
    #: Re-reads of a block that failed with EIO before the file is recorded as unreadable.
    read_retries: int = 3
    #: Bytes written between two filesystem syncs (each sync makes a batch of blobs durable).
    sync_batch_bytes: int = 256 * 1024 * 1024
    # Limits on one scan of an untrusted medium (kiosk/sources/scan_limits.py): files and seconds
    # stop the scan (what was read is kept, the import is reported incomplete); depth and size skip
    # the folder or file with a reason.
    #: Files on one medium. A full DVD of 512 KiB CT slices holds ~9,000 files and a DVD of the
    #: smallest real instances ~100,000; twice that still keeps the import's per-file records
    #: (a few hundred bytes each) under ~100 MB on a Pi, where millions would not fit.
    max_files: int = 200_000
    #: Folders a file may be nested in. PDI file-sets are 4 deep (patient/study/series/image)
    #: and viewers on the disc add a few; ISO9660 allows 8. Far deeper is a hostile tree, and
    #: its paths soon no longer fit in PATH_MAX.
    max_depth: int = 32
    #: Bytes of one file. The largest real objects (enhanced multi-frame CT/MR, tomosynthesis,
    #: ultrasound cine) are 0.1-2 GB, and native pixel data cannot pass 4 GiB (a 32-bit length);
    #: a larger file is staged whole on the kiosk's own card before it is even parsed.
    max_file_bytes: int = 4 * 1024**3
    #: Seconds for one scan (listing and copying). A full dual-layer DVD (8.5 GB) at the 4x
    #: (5.5 MB/s) of a cheap USB drive takes ~26 minutes; a disc slower than that is usually
    #: scratched, and better cleaned and imported again than left blocking the desk.
    max_seconds: int = 30 * 60
    # Limits on zip archives found on a medium (cloud-film downloads, studies sent by e-mail),
    # whose members are imported like files (kiosk/sources/archive.py). One member is a file:
    # max_file_bytes applies to it, and members count towards max_files.
    #: Members of one archive. A 5,000-slice CT is 5,000 members; far more is refused whole: a
    #: central directory of millions of empty members only costs memory and time.
    archive_max_members: int = 100_000
    #: Bytes the members of one archive add up to, uncompressed, by their headers (a member that
    #: gives more than its header says is refused as it is read). Two dual-layer DVDs.
    archive_max_bytes: int = 16 * 1024**3
    #: Uncompressed size over compressed size of one member larger than 1 MiB. DICOM deflates
    #: 2-10:1 (a mostly black image more); zip bombs need hundreds to a thousand.
    archive_max_ratio: int = 100

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(1 <= self.workers <= 16, "import.workers", "must be between 1 and 16")
        _require(0 <= self.read_retries <= 20, "import.read_retries", "must be between 0 and 20")
        _require(self.sync_batch_bytes >= 1 << 20, "import.sync_batch_bytes", "must be >= 1 MiB")
        _require(1 <= self.max_files <= 10_000_000, "import.max_files",
                 "must be between 1 and 10000000")
        # 128: the deepest tree the ISO reader indexes (kiosk/sources/iso.py) and the folder walk
        # allows.
        _require(1 <= self.max_depth <= 128, "import.max_depth", "must be between 1 and 128")
        _require(self.max_file_bytes >= 1 << 20, "import.max_file_bytes", "must be >= 1 MiB")
        _require(10 <= self.max_seconds <= 86400, "import.max_seconds",
                 "must be between 10 and 86400")
        _require(1 <= self.archive_max_members <= 10_000_000, "import.archive_max_members",
                 "must be between 1 and 10000000")
        _require(self.archive_max_bytes >= 1 << 20, "import.archive_max_bytes",
                 "must be >= 1 MiB")
        _require(10 <= self.archive_max_ratio <= 100_000, "import.archive_max_ratio",
                 "must be between 10 and 100000")


@dataclass(frozen=True)
class CloudSettings:
    """The office's DICOMweb server (used by sync; empty URL = offline only)."""

    url: str = ""
    user: str = ""
    password: str = ""
    token: str = ""
    ca_bundle: str = ""

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(
            not self.url or self.url.startswith(("http://", "https://")),
            "cloud.url",
            "must start with http:// or https://",
        )
        _require(
            not (self.token and self.user),
            "cloud.token",
            "set either cloud.token (bearer) or cloud.user/cloud.password (basic), not both",
        )


#: Link kinds: the kiosk's own Ed25519 token, or an orthanc-auth-service HS256 share token.
LINK_KINDS = ("kiosk", "orthanc-share")
#: orthanc-auth-service publication types that work from Study Instance UIDs alone.
ORTHANC_TOKEN_TYPES = ("ohif-viewer-publication", "stone-viewer-publication",
                       "meddream-viewer-publication", "volview-viewer-publication")
#: Where kiosk links point when ``link.base_url`` is not set: a placeholder host nothing serves
#: (no share is registered anywhere until the office's gateway is configured).
PLACEHOLDER_BASE_URL = "https://link.medpass.example"
#: The longest ``link.base_url``: with ``/s/`` and a 26-character id the link stays within the
#: 84 bytes of a version-5 QR code at error correction M.
MAX_BASE_URL = 55
#: Used when ``link.url_template`` is empty; ``{study_uid}`` is the comma-separated study list,
#: as orthanc-auth-service itself builds its OHIF links. (Kiosk links are short by default:
#: ``{base_url}/s/{id}``; a ``url_template`` puts the whole token in the URL instead.)
DEFAULT_URL_TEMPLATES = {
    "kiosk": PLACEHOLDER_BASE_URL + "/s/{token}",
    "orthanc-share": "https://viewer.medpass.example/ohif/viewer?StudyInstanceUIDs={study_uid}"
                     "&token={token}",
}


@dataclass(frozen=True)
class LinkSettings:
    """The cloud link in the QR code (minted offline; live once the upload lands)."""

    #: "kiosk" (Ed25519, this kiosk's key) or "orthanc-share" (HS256, shared secret).
    kind: str = "kiosk"
    #: URL with ``{token}`` and optionally ``{study_uid}``; empty = the kind's default.
    url_template: str = ""
    #: Days the link stays valid; it expires at the end of that local day.
    expiry_days: int = 30
    #: orthanc-auth-service's SECRET_KEY (env KIOSK_LINK_SECRET overrides).
    orthanc_secret: str = ""
    #: orthanc-auth-service token type, i.e. which viewer the link opens.
    orthanc_token_type: str = "ohif-viewer-publication"
    #: Revocation list file; empty = ``link/revoked.txt`` in the data directory.
    revocation_list: str = ""
    #: The office gateway's public URL (env KIOSK_LINK_BASE_URL): the QR holds
    #: ``{base_url}/s/{id}`` and the kiosk registers each link there through its outbox.
    base_url: str = ""
    #: A 6-digit passcode per link, printed on the slip (never in the QR); the gateway locks
    #: the link after a few wrong tries.
    passcode: bool = False

    @property
    def short(self) -> bool:
        """Whether links are short (``{base}/s/{id}``, the token sent to the gateway)."""
        return self.kind == "kiosk" and not self.url_template

    @property
    def short_base(self) -> str:
        """The origin short links point at (the placeholder until ``base_url`` is set)."""
        return self.base_url.rstrip("/") or PLACEHOLDER_BASE_URL

    @property
    def registers(self) -> bool:
        """Whether minted links are registered with a gateway (short links, ``base_url`` set)."""
        return self.short and bool(self.base_url)

    @property
    def template(self) -> str:
        """The URL template in force (short links: ``{base}/s/{id}``, with ``{id}``)."""
        if self.short:
            return self.short_base + "/s/{id}"
        return self.url_template or DEFAULT_URL_TEMPLATES.get(self.kind, "")

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(self.kind in LINK_KINDS, "link.kind", f"must be one of {', '.join(LINK_KINDS)}")
        _require(not self.base_url or (
            self.base_url.startswith(("http://", "https://"))
            and not any(c in self.base_url for c in "?#{} ")
            and len(self.base_url.rstrip("/")) <= MAX_BASE_URL),
            "link.base_url", f"must be an http:// or https:// URL of at most {MAX_BASE_URL} "
            "characters "
            "without a query (the gateway's public address, e.g. https://gw.office.example)")
        _require(not self.passcode or self.short, "link.passcode",
                 "needs short links: link.kind = \"kiosk\" and no link.url_template")
        if not self.short:
            self._validate_template()
        _require(1 <= self.expiry_days <= 3650, "link.expiry_days", "must be between 1 and 3650")
        _require(self.orthanc_token_type in ORTHANC_TOKEN_TYPES, "link.orthanc_token_type",
                 f"must be one of {', '.join(ORTHANC_TOKEN_TYPES)}")
        # HS256 with a short secret is guessable offline from one printed link.
        _require(self.kind != "orthanc-share" or len(self.orthanc_secret.encode()) >= 32,
                 "link.orthanc_secret",
                 "must be at least 32 bytes when link.kind is \"orthanc-share\" "
                 "(or set KIOSK_LINK_SECRET)")

    def _validate_template(self) -> None:
        _require(self.template.startswith(("http://", "https://")), "link.url_template",
                 "must start with http:// or https://")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        except ValueError as exc:  # an unbalanced brace
            raise ConfigError(
                f"Setting 'link.url_template' is not a valid template: {exc}.") from None
        _require(fields <= {"token", "study_uid"} and "token" in fields, "link.url_template",
                 "must contain {token} and no placeholder other than {token} and {study_uid}")


@dataclass(frozen=True)
class PrinterSettings:
    """The optional ESC/POS receipt printer for the patient slip."""

    #: false: never try to print.
    enabled: bool = True
    #: USB ids (TOML accepts 0x04b8); 0 = autodetect a USB printer-class device.
    vendor_id: int = 0
    product_id: int = 0
    #: How long a write may stall before the printer counts as offline.
    timeout_ms: int = 5000
    #: Printable width in dots: 384 for 58 mm paper, 576 for 80 mm.
    width_dots: int = 384
    #: "native" (the printer draws the QR: GS ( k) or "image" (sent as a raster image).
    qr: str = "native"
    #: Chinese lines as "image" (rendered with cjk_font) or "gb18030" (printer's own font).
    chinese: str = "image"
    #: TTF/OTF/TTC font with Chinese glyphs; empty = look in the usual system places.
    cjk_font: str = ""

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(0 <= self.vendor_id <= 0xFFFF, "printer.vendor_id", "must be 0 to 0xffff")
        _require(0 <= self.product_id <= 0xFFFF, "printer.product_id", "must be 0 to 0xffff")
        _require(bool(self.vendor_id) or not self.product_id, "printer.vendor_id",
                 "must be set when printer.product_id is")
        _require(100 <= self.timeout_ms <= 60000, "printer.timeout_ms",
                 "must be between 100 and 60000")
        _require(200 <= self.width_dots <= 1024, "printer.width_dots",
                 "must be between 200 and 1024 (384 for 58 mm paper, 576 for 80 mm)")
        _require(self.qr in ("native", "image"), "printer.qr", 'must be "native" or "image"')
        _require(self.chinese in ("image", "gb18030"), "printer.chinese",
                 'must be "image" or "gb18030"')


@dataclass(frozen=True)
class SyncSettings:
    """How the outbox uploads and pulls (``kiosk sync`` and the app's background loop)."""

    #: Seconds between two sync rounds when idle (the inbox is looked at this often too).
    interval_seconds: int = 60
    #: Instances per STOW-RS request, and a cap on the bytes of one request.
    batch_instances: int = 32
    batch_bytes: int = 16 * 1024 * 1024
    #: Retry delays double from this (with jitter) up to backoff_max_seconds.
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 900.0
    #: Rounds an instance the server refused "for now" is re-sent before the job fails.
    max_attempts: int = 8
    #: Seconds to wait for the server (connect, and between bytes of an answer).
    timeout_seconds: float = 60.0
    #: Translations are looked for in cases updated within this many days.
    pull_days: int = 30

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(1 <= self.interval_seconds <= 86400, "sync.interval_seconds",
                 "must be between 1 and 86400")
        _require(1 <= self.batch_instances <= 1000, "sync.batch_instances",
                 "must be between 1 and 1000")
        _require(self.batch_bytes >= 1 << 20, "sync.batch_bytes", "must be >= 1 MiB")
        _require(0 < self.backoff_base_seconds <= self.backoff_max_seconds,
                 "sync.backoff_base_seconds", "must be > 0 and <= sync.backoff_max_seconds")
        _require(1 <= self.max_attempts <= 100, "sync.max_attempts", "must be between 1 and 100")
        _require(0 < self.timeout_seconds <= 3600, "sync.timeout_seconds",
                 "must be between 0 and 3600")
        _require(1 <= self.pull_days <= 3650, "sync.pull_days", "must be between 1 and 3650")


@dataclass(frozen=True)
class RetentionSettings:
    """How long a finished case stays on the kiosk (``kiosk retention`` and the desk app)."""

    #: Days after a case was both delivered (verified export) and uploaded before it is purged
    #: automatically; 0 turns automatic purging off. Cases not uploaded are never purged.
    days: int = 14

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(0 <= self.days <= 3650, "retention.days",
                 "must be between 0 (never purge automatically) and 3650")


@dataclass(frozen=True)
class UiSettings:
    """The desk UI (``kiosk`` and ``kiosk demo``)."""

    #: Language of the desk UI at start (F2 switches): "en" or "zh".
    language: str = "en"
    #: Deprecated: the coordinator PIN is stored hashed (``kiosk pin set``). A PIN here is
    #: hashed into the data directory on the first start without one; then remove it.
    admin_pin: str = ""
    #: Seconds without a key press before a patient's screens are cleared (back to Home).
    idle_seconds: int = 180
    #: Seconds the Done screen (QR, passphrase) stays up before it clears itself.
    done_seconds: int = 120

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(self.language in ("en", "zh"), "ui.language", 'must be "en" or "zh"')
        _require(self.admin_pin == "" or (self.admin_pin.isdigit()
                                          and 4 <= len(self.admin_pin) <= 12),
                 "ui.admin_pin", "must be empty or 4 to 12 digits")
        _require(30 <= self.idle_seconds <= 3600, "ui.idle_seconds",
                 "must be between 30 and 3600")
        _require(15 <= self.done_seconds <= 900, "ui.done_seconds",
                 "must be between 15 and 900")


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    #: Name of this kiosk in audit entries and links.
    kiosk_id: str = "kiosk-1"
    #: Data directory; ``--data-dir`` and ``KIOSK_DATA_DIR`` override it.
    data_dir: str = ""
    import_: ImportSettings = field(default_factory=ImportSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    link: LinkSettings = field(default_factory=LinkSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(bool(self.kiosk_id.strip()), "kiosk_id", "must not be empty")
        self.import_.validate()
        self.cloud.validate()
        self.sync.validate()
        self.link.validate()
        self.printer.validate()
        self.ui.validate()
        self.retention.validate()


#: TOML table names that differ from the Python field names (``import`` is a keyword).
_TOML_NAMES = {"import_": "import"}

_ENV_CLOUD = {
    "KIOSK_CLOUD_URL": "url",
    "KIOSK_CLOUD_USER": "user",
    "KIOSK_CLOUD_PASSWORD": "password",
    "KIOSK_CLOUD_TOKEN": "token",
}


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"Setting '{key}' {message}.")


def _build(cls: type[Any], data: dict[str, Any], prefix: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    by_toml = {_TOML_NAMES.get(f.name, f.name): f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        f = by_toml.get(key)
        name = f"{prefix}{key}"
        if f is None:
            known = ", ".join(sorted(by_toml))
            raise ConfigError(f"Unknown setting '{name}'. Known settings here: {known}.")
        expected = hints[f.name]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                raise ConfigError(f"Setting '{name}' must be a table ([{name}]).")
            values[f.name] = _build(typing.cast(type[Any], expected), value, f"{name}.")
            continue
        if not _type_ok(value, expected):
            raise ConfigError(
                f"Setting '{name}' must be {_type_name(expected)}, not {type(value).__name__}."
            )
        values[f.name] = value
    return cls(**values)


def _type_ok(value: Any, expected: Any) -> bool:
    if isinstance(expected, types.UnionType):
        return any(_type_ok(value, t) for t in typing.get_args(expected))
    if expected is int:  # TOML booleans are ints in Python; refuse them where a number is meant
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    names = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}
    return names.get(expected, str(expected))


def load_config(path: Path | None, env: dict[str, str] | None = None) -> Config:
    """Read, validate and return the configuration.

    Parameters
    ----------
    path : Path or None
        The TOML file; ``None`` means defaults only.
    env : dict, optional
        Environment for the ``KIOSK_CLOUD_*`` overrides (``os.environ`` by default).

    Raises
    ------
    ConfigError
        The file is missing or unreadable, is not valid TOML, or has an unknown key, a value
        of the wrong type or a value out of range. The message names the key.
    """
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Configuration file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Configuration file {path} cannot be read: {exc}.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Configuration file {path} is not valid TOML: {exc}.") from None
    config: Config = _build(Config, data, "")
    overrides = {field_: env[var] for var, field_ in _ENV_CLOUD.items() if env.get(var)}
    if overrides:
        config = dataclasses.replace(config, cloud=dataclasses.replace(config.cloud, **overrides))
    if env.get("KIOSK_LINK_SECRET"):  # the HS256 secret need not live in the file
        config = dataclasses.replace(config, link=dataclasses.replace(
            config.link, orthanc_secret=env["KIOSK_LINK_SECRET"]))
    if env.get("KIOSK_LINK_BASE_URL"):
        config = dataclasses.replace(config, link=dataclasses.replace(
            config.link, base_url=env["KIOSK_LINK_BASE_URL"]))
    config.validate()
    return config
