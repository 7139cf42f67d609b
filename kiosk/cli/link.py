"""``kiosk qr`` and ``kiosk link``: the cloud link on the terminal, in a PNG, on paper; tokens.

``kiosk qr CASE`` prints the QR code in half-block characters and the link as its last line (a
contract: scripts take the link from there); ``--json`` prints the link as one object instead
(with the passcode, which is never in the QR). ``kiosk link verify TOKEN`` is for gateways:
exit 0 when the token is valid, 4 with the reason when not. ``kiosk link pubkey`` prints this
kiosk's public key for them. ``kiosk link revoke CASE|ID`` and ``kiosk link reissue CASE`` take
effect here at once and reach the gateway through the outbox.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kiosk.errors import LinkTokenError, PrinterError, UsageError
from kiosk.links import qr
from kiosk.links.slip import passcode_text

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


def link_json(link: Any) -> dict[str, Any]:
    """A link as ``kiosk qr --json`` and ``kiosk link reissue --json`` print it."""
    return {"case_id": link.case_id, "url": link.url, "id": link.share_id,
            "passcode": link.passcode, "expires": link.expires.isoformat(),
            "valid_until": link.expiry_date, "studies": list(link.study_uids),
            "token_id": link.token_id, "kind": link.kind, "qr_version": qr.version_of(link.url)}


def cmd_qr(args: argparse.Namespace) -> int:
    """``kiosk qr CASE [--png FILE] [--print] [--json]``: the link as QR; the link itself last."""
    service = _service(args)
    link = service.case_link(args.case_id)
    code = EXIT_OK
    if getattr(args, "json", False):
        if args.png:
            qr.write_png(link.url, Path(args.png))
        print(json.dumps(link_json(link), ensure_ascii=False))
        return code
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
    if link.passcode is not None:
        print(f"Passcode: {passcode_text(link.passcode)} (on the slip, not in the QR)")
    print(link.url)
    return code


def _revoke(args: argparse.Namespace) -> int:
    key = (args.token or "").strip()
    if not key:
        raise UsageError("Name the case or the link id: `kiosk link revoke CASE|ID`.")
    service = _service(args)
    revoked = service.revoke_link(key)
    if not revoked:
        print(f"kiosk link revoke: every link of {key} was already revoked.", file=sys.stderr)
    told = (" (the office gateway is told at the next sync)" if service.syncer.cloud is not None
            else " (no cloud is configured: the office gateway cannot be told from here)")
    for link in revoked:
        where = told if link.share_id else ""
        print(f"Revoked the link of case {link.case_id} valid until {link.expiry_date}"
              f"{where}: {link.url}")
    return EXIT_OK


def _reissue(args: argparse.Namespace) -> int:
    case_id = (args.token or "").strip()
    if not case_id:
        raise UsageError("Name the case: `kiosk link reissue CASE`.")
    link = _service(args).reissue_link(case_id)
    print(f"New link for case {link.case_id}, valid until {link.expiry_date}; the old one no "
          "longer works. Print a new slip: `kiosk qr CASE --print`.")
    if link.passcode is not None:
        print(f"Passcode: {passcode_text(link.passcode)}")
    print(link.url)
    return EXIT_OK


def cmd_link(args: argparse.Namespace) -> int:
    """``kiosk link verify TOKEN [--study UID] [--key PEM] [--revoked FILE]`` / ``pubkey``."""
    if args.action == "pubkey":
        sys.stdout.write(_service(args).links.verifier.public_pem)
        return EXIT_OK
    if args.action == "revoke":
        return _revoke(args)
    if args.action == "reissue":
        return _reissue(args)
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
