"""``kiosk gateway config``: the files that make ``/usr/sbin/Orthanc DIR/orthanc.json`` a gateway.

Writes, in ``DIR``:

- ``orthanc.json``: Orthanc's own settings (HTTP port, no DICOM listener, the Python,
  DICOMweb and, with ``--database postgresql://…``, PostgreSQL plugins) and the
  ``MedPassGateway`` section (:mod:`kiosk.gateway.settings`). Mode 0600: it holds passwords.
- ``medpass_gateway.py``: the plugin's bootstrap, run by Orthanc's embedded Python 3.11. It
  puts this install's site-packages (and the kiosk's source folder) on ``sys.path`` ahead of
  Debian's ``dist-packages`` (whose older PyJWT and cryptography would shadow ours) and starts
  :mod:`kiosk.gateway.plugin`.
- ``admin-password`` (0600) when no admin password was given: a random one, printed once.
- ``storage/``, ``index/`` and ``gateway.sqlite`` appear when Orthanc first starts (SQLite).

Orthanc's built-in authentication stays off: Orthanc 1.10 would answer 401 before the plugin's
filter runs, even for the phone's routes, so the filter checks the kiosk and admin credentials
itself.
"""

from __future__ import annotations

import json
import os
import secrets
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import kiosk
from kiosk.errors import ConfigError
from kiosk.gateway.settings import SECTION, GatewaySettings, Limits
from kiosk.viewer import DIST

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
SHARE_PAGE_NAME = "SHARE.html"
BOOTSTRAP_NAME = "medpass_gateway.py"

_BOOTSTRAP = '''"""MedPass gateway: Orthanc's Python plugin (written by `kiosk gateway config`)."""

import sys

# This install's packages before Debian's dist-packages: theirs are older (PyJWT, cryptography).
_OURS = {paths!r}
_AT = next((n for n, p in enumerate(sys.path) if p.endswith(("dist-packages", "site-packages"))),
           len(sys.path))
sys.path[_AT:_AT] = [p for p in _OURS if p not in sys.path]

import kiosk.gateway.plugin  # noqa: E402

kiosk.gateway.plugin.start()
'''


@dataclass(frozen=True)
class GatewayFiles:
    """What :func:`write_gateway_config` wrote."""

    config: Path
    bootstrap: Path
    #: Set when the admin password was generated (it is also in this file, 0600).
    admin_password_file: Path | None
    admin_password: str | None


def find_plugin(stem: str, dirs: tuple[str, ...] = PLUGIN_DIRS) -> str:
    """The path of Orthanc plugin ``lib{stem}.so`` (Debian's packages), or ConfigError."""
    for folder in dirs:
        found = sorted(Path(folder).glob(f"lib{stem}.so*"))
        if found:
            return str(found[0])
    package = {"OrthancPython": "orthanc-python", "OrthancDicomWeb": "orthanc-dicomweb"}.get(
        stem, "orthanc-postgresql")
    raise ConfigError(f"Orthanc's plugin lib{stem}.so is not installed (apt-get install "
                      f"{package}).")


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _postgres_section(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if not parts.hostname or not unquote(parts.path).strip("/"):
        raise ConfigError(f"--database {url!r}: write postgresql://USER:PASSWORD@HOST:PORT/DB.")
    return {"EnableIndex": True, "EnableStorage": True, "ConnectionUri": url,
            # Several Orthanc processes share this database: no exclusive lock.
            "Lock": False, "IndexConnectionsCount": 4}


def _our_paths() -> list[str]:
    paths = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    source_root = str(Path(kiosk.__file__).resolve().parents[1])
    if source_root not in paths:
        paths.append(source_root)
    return paths


def write_gateway_config(out: Path, *, public_url: str, http_port: int, kiosk_user: str,
                         kiosk_password: str, trust_keys: list[str],
                         database: str | None = None, admin_user: str = "admin",
                         admin_password: str | None = None, remote_access: bool = False,
                         limits: Limits | None = None) -> GatewayFiles:
    """Write ``orthanc.json`` and the plugin bootstrap into ``out`` (created if needed).

    Parameters
    ----------
    out : Path
        The gateway's folder (SQLite storage lives here too without ``database``).
    public_url : str
        What phones open, e.g. ``https://gw.office.example`` (the kiosks' link base URL).
    http_port : int
        Orthanc's HTTP port.
    kiosk_user, kiosk_password : str
        The credentials kiosks upload and register links with.
    trust_keys : list of str
        PEM public keys of the kiosks whose tokens are accepted (``kiosk link pubkey``).
    database : str, optional
        ``postgresql://…``: Orthanc's index and storage and the gateway's tables there.
    admin_user, admin_password : str
        The office's credentials for everything else; a random password when None.
    remote_access : bool
        Let Orthanc answer other hosts than this one (without nginx in front).
    limits : Limits, optional
        Rate limits per minute.

    Raises
    ------
    ConfigError
        A value is unusable or an Orthanc plugin is missing.
    """
    if not public_url.startswith(("https://", "http://")):
        raise ConfigError(f"--public-url {public_url!r} must start with https:// (or http:// "
                          "for a test on this machine).")
    if not 0 < http_port < 65536:
        raise ConfigError(f"--http-port {http_port} is not a TCP port.")
    if not kiosk_user or ":" in kiosk_user or len(kiosk_password) < 12:
        raise ConfigError("--kiosk-user must not contain ':' and --kiosk-password needs at "
                          "least 12 characters.")
    if admin_password is not None and (len(admin_password) < 12 or ":" in admin_user):
        raise ConfigError("--admin-password needs at least 12 characters (and --admin-user "
                          "no ':').")
    if not trust_keys or not all("BEGIN PUBLIC KEY" in k for k in trust_keys):
        raise ConfigError("Give each kiosk's public key with --trust-key (a PEM file from "
                          "`kiosk link pubkey`).")
    out = out.resolve()
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    generated = admin_password is None
    if admin_password is None:
        admin_password = secrets.token_urlsafe(18)

    plugins = [find_plugin("OrthancPython"), find_plugin("OrthancDicomWeb")]
    config: dict[str, object] = {
        "Name": "MedPass gateway",
        "HttpPort": http_port,
        "RemoteAccessAllowed": remote_access,
        "AuthenticationEnabled": False,  # the plugin's filter checks credentials itself
        "DicomServerEnabled": False,
        "KeepAlive": True,
        "StorageCompression": False,
        "SaveJobs": False,
        "Plugins": plugins,
        "PythonScript": str(out / BOOTSTRAP_NAME),
        "PythonVerbose": False,
        # WADO-URI off: kiosks and phones use WADO-RS only.
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    if database:
        if not database.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"--database {database!r}: only postgresql://… is supported "
                              "(without it, SQLite files in the gateway folder).")
        plugins += [find_plugin("OrthancPostgreSQLIndex"),
                    find_plugin("OrthancPostgreSQLStorage")]
        config["PostgreSQL"] = _postgres_section(database)
        gateway_db = database
    else:
        config["StorageDirectory"] = str(out / "storage")
        config["IndexDirectory"] = str(out / "index")
        gateway_db = f"sqlite:///{out / 'gateway.sqlite'}"

    settings = GatewaySettings(
        public_url=public_url.rstrip("/"), kiosk_user=kiosk_user,
        kiosk_password=kiosk_password, admin_user=admin_user, admin_password=admin_password,
        trust_keys=tuple(k.strip() + "\n" for k in trust_keys), database=gateway_db,
        revocation_file=str(out / "revoked.txt"),
        client_key_secret=secrets.token_hex(32), share_page=str(DIST / SHARE_PAGE_NAME),
        limits=limits or Limits())
    config[SECTION] = settings.to_json()

    config_path = out / "orthanc.json"
    _write_private(config_path, json.dumps(config, indent=2) + "\n")
    bootstrap = out / BOOTSTRAP_NAME
    bootstrap.write_text(_BOOTSTRAP.format(paths=_our_paths()), encoding="utf-8")
    password_file = None
    if generated:
        password_file = out / "admin-password"
        _write_private(password_file, admin_password + "\n")
    return GatewayFiles(config=config_path, bootstrap=bootstrap,
                        admin_password_file=password_file,
                        admin_password=admin_password if generated else None)
