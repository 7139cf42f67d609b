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

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(1 <= self.workers <= 16, "import.workers", "must be between 1 and 16")
        _require(0 <= self.read_retries <= 20, "import.read_retries", "must be between 0 and 20")
        _require(self.sync_batch_bytes >= 1 << 20, "import.sync_batch_bytes", "must be >= 1 MiB")


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


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    #: Name of this kiosk in audit entries and links.
    kiosk_id: str = "kiosk-1"
    #: Data directory; ``--data-dir`` and ``KIOSK_DATA_DIR`` override it.
    data_dir: str = ""
    import_: ImportSettings = field(default_factory=ImportSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)

    def validate(self) -> None:
        """Raise ConfigError for values out of range."""
        _require(bool(self.kiosk_id.strip()), "kiosk_id", "must not be empty")
        self.import_.validate()
        self.cloud.validate()


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
            values[f.name] = _build(expected, value, f"{name}.")
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
    config.validate()
    return config
