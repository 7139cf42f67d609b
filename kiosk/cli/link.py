"""``kiosk qr`` and ``kiosk link``: the cloud link on the terminal, in a PNG, on paper; tokens.

``kiosk qr CASE`` prints the QR code in half-block characters and the link as its last line (a
contract: scripts take the link from there). ``kiosk link verify TOKEN`` is for gateways: exit
0 when the token is valid, 4 with the reason when not. ``kiosk link pubkey`` prints this kiosk's
public key for them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kiosk.errors import LinkTokenError, PrinterError, UsageError
from kiosk.links import qr

EXIT_OK, EXIT_USAGE, EXIT_INVALID = 0, 2, 4
# White on black whatever the terminal's theme: the code is drawn with light blocks.
_QR_COLOURS, _RESET = "\x1b[97;40m", "\x1b[0m"


def _service(args: argparse.Namespace) -> Any:
    from kiosk.bootstrap import build_service

    return build_service(getattr(args, "config", None), getattr(args, "data_dir", None))


def _warn_if_too_small(columns: int, rows: int) -> None:
    if not sys.stdout.isatty():
        return
    size = shutil.get_terminal_size()
    if size.columns < columns or size.lines < rows:
        print(f"kiosk qr: this terminal is {size.columns}x{size.lines}; the QR code needs "
              f"{columns}x{rows} to scan. Enlarge it, or write a PNG with --png FILE.",
              file=sys.stderr)


def cmd_qr(args: argparse.Namespace) -> int:
    """``kiosk qr CASE [--png FILE] [--print]``: the link as QR; the link itself last."""
    service = _service(args)
    link = service.case_link(args.case_id)
    code = EXIT_OK
    if args.png:
        qr.write_png(link.url, Path(args.png))
        print(f"QR code written to {args.png}")
    else:
        lines = qr.terminal_lines(link.url)
        _warn_if_too_small(len(lines[0]), len(lines) + 2)
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        for line in lines:
            print(f"{_QR_COLOURS}{line}{_RESET}" if colour else line)
    if getattr(args, "print", False):
        try:
            report = service.print_slip(args.case_id)
            for warning in report.warnings:
                print(f"kiosk qr: {warning}", file=sys.stderr)
            print(f"Slip printed on {report.printer}.", file=sys.stderr)
        except PrinterError as exc:  # the link is still shown: the flow goes on without paper
            print(f"kiosk qr: {exc.title}: {exc.text}", file=sys.stderr)
            code = exc.exit_code
    print(f"Case {link.case_id}: link valid until {link.expiry_date} "
          f"({len(link.study_uids)} {'study' if len(link.study_uids) == 1 else 'studies'})")
    print(link.url)
    return code


def cmd_link(args: argparse.Namespace) -> int:
    """``kiosk link verify TOKEN [--study UID] [--key PEM] [--revoked FILE]`` / ``pubkey``."""
    if args.action == "pubkey":
        sys.stdout.write(_service(args).links.verifier.public_pem)
        return EXIT_OK
    from kiosk.bootstrap import build_link_verifier

    token = args.token
    if token == "-":
        token = sys.stdin.readline()
    if not token or not token.strip():
        raise UsageError("Give the token to verify: `kiosk link verify TOKEN` (- reads stdin).")
    verifier = build_link_verifier(getattr(args, "config", None),
                                   getattr(args, "data_dir", None),
                                   public_key_file=args.key, revocation_file=args.revoked)
    try:
        claims = verifier.verify(token, study_uid=args.study)
    except LinkTokenError as exc:
        print(f"kiosk link verify: invalid ({exc.reason}): {exc.text}", file=sys.stderr)
        return EXIT_INVALID
    print(f"valid {claims.kind} token {claims.token_id}")
    if claims.kiosk_id is not None:
        print(f"kiosk:   {claims.kiosk_id}")
    if claims.case_id is not None:
        print(f"case:    {claims.case_id}")
    print(f"studies: {' '.join(claims.study_uids)}")
    print(f"expires: {claims.expires.isoformat()}")
    return EXIT_OK
