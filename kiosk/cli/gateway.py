"""``kiosk gateway config``: write the office gateway's Orthanc configuration (docs/gateway.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.errors import ConfigError

EXIT_OK = 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``kiosk gateway config`` (the parser comes from kiosk/cli/main.py)."""
    p.add_argument("action", choices=["config"])
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the gateway's folder: orthanc.json, the plugin script, SQLite data")
    p.add_argument("--public-url", required=True, metavar="URL",
                   help="what phones open (the kiosks' KIOSK_LINK_BASE_URL), https://…")
    p.add_argument("--http-port", required=True, type=int, metavar="PORT")
    p.add_argument("--kiosk-user", required=True, metavar="USER")
    p.add_argument("--kiosk-password", required=True, metavar="PASSWORD")
    p.add_argument("--trust-key", required=True, action="append", metavar="PEM",
                   help="a kiosk's public key file (`kiosk link pubkey`); repeat for each")
    p.add_argument("--database", metavar="URL",
                   help="postgresql://USER:PASSWORD@HOST:PORT/DB for Orthanc's index and "
                        "storage and the gateway's tables (default: SQLite in DIR)")
    p.add_argument("--admin-user", default="admin", metavar="U")
    p.add_argument("--admin-password", metavar="P",
                   help="default: a random one, written to DIR/admin-password and printed once")
    p.add_argument("--remote-access", action="store_true",
                   help="let Orthanc answer other hosts directly (without nginx in front)")
    p.add_argument("--limit-client", type=int, metavar="N",
                   help="phone requests a minute from one client (default 1200)")
    p.add_argument("--limit-share", type=int, metavar="N",
                   help="phone requests a minute to one share (default 6000)")
    p.add_argument("--limit-client-sessions", type=int, metavar="N",
                   help="link openings (passcode tries included) a minute from one client "
                        "(default 10; raise it when many phones share one address)")


def _read_key(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--trust-key {path}: cannot be read ({exc}).") from None


def cmd_gateway(args: argparse.Namespace) -> int:
    """``kiosk gateway config …``."""
    from kiosk.gateway.config_file import write_gateway_config
    from kiosk.gateway.settings import Limits

    defaults = Limits()
    for name in ("limit_client", "limit_share", "limit_client_sessions"):
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be at least 1 (requests a minute).")
    limits = Limits(client=args.limit_client or defaults.client,
                    share=args.limit_share or defaults.share,
                    client_sessions=args.limit_client_sessions or defaults.client_sessions)
    files = write_gateway_config(
        Path(args.out), public_url=args.public_url, http_port=args.http_port,
        kiosk_user=args.kiosk_user, kiosk_password=args.kiosk_password,
        trust_keys=[_read_key(p) for p in args.trust_key], database=args.database,
        admin_user=args.admin_user, admin_password=args.admin_password,
        remote_access=args.remote_access, limits=limits)
    print(f"Written: {files.config}")
    print(f"Start it with: /usr/sbin/Orthanc {files.config}")
    if files.admin_password:
        print(f"\n  Office admin: {args.admin_user} / {files.admin_password}")
        print(f"  (shown once; also in {files.admin_password_file}, mode 0600)\n")
    sys.stdout.flush()
    return EXIT_OK
