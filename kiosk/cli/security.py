"""``kiosk pin`` and ``kiosk retention``: the coordinator PIN and automatic purging.

``kiosk pin set`` reads the new PIN twice from the terminal (not echoed), or from standard input
when it is not a terminal, so an image's first-boot script can set it:
``printf '%s\\n' "$PIN" | kiosk pin set``. ``kiosk retention`` is what a systemd timer runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from typing import Any

from kiosk.errors import PinError

EXIT_OK = 0


def _service(args: argparse.Namespace) -> Any:
    from kiosk.bootstrap import build_service

    return build_service(getattr(args, "config", None), getattr(args, "data_dir", None))


def read_new_pin() -> str:
    """The new PIN, typed twice on a terminal, or one or two lines on standard input.

    Raises
    ------
    PinError
        Nothing given, or the two entries differ.
    """
    if sys.stdin.isatty():
        first = getpass.getpass("New coordinator PIN (4-12 digits): ")
        second = getpass.getpass("The same PIN again: ")
    else:
        lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not lines:
            raise PinError("No PIN on standard input: pipe it in, e.g. "
                           "`printf '%s\\n' \"$PIN\" | kiosk pin set`.")
        first = lines[0]
        second = lines[1] if len(lines) > 1 else first  # a second line, if any, must match
    if first != second:
        raise PinError("The two PINs differ; nothing was changed. Try again.")
    if not first:
        raise PinError("The PIN is empty; nothing was changed.")
    return first


def cmd_pin(args: argparse.Namespace) -> int:
    """``kiosk pin set`` / ``kiosk pin status [--json]``."""
    service = _service(args)
    if args.action == "set":
        service.set_pin(read_new_pin(), source="cli")
        print("Coordinator PIN set (stored as a scrypt hash; the lockout is cleared).",
              file=sys.stderr if args.json else sys.stdout)
    status = service.pin_status()
    config_pin = bool(service.config.ui.admin_pin)
    if args.json:
        json.dump(dataclasses.asdict(status) | {
            "file": str(service.locations.pin_file), "config_pin": config_pin},
            sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if args.action == "status":
        if not status.set:
            print("No coordinator PIN is set: the desk asks for one at start, or run "
                  "`kiosk pin set`.")
        else:
            print(f"Coordinator PIN set {status.set_at or ''}; {status.failures} wrong in a row"
                  + (f", locked for {status.locked_seconds} s" if status.locked_seconds else ""))
    if config_pin:
        print("Warning: ui.admin_pin is still in the configuration file. The PIN in force is "
              "the stored hash; remove the key.", file=sys.stderr)
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    """``kiosk retention [--dry-run] [--json]``: purge cases delivered and uploaded long ago."""
    service = _service(args)
    days = service.config.retention.days
    review = service.retention_review()
    done = service.run_retention(dry_run=args.dry_run) if days > 0 else []
    purged = [] if args.dry_run else [v.case_id for v in done]
    due = [v.case_id for v in review if v.purge]
    if args.json:
        json.dump({"days": days, "dry_run": args.dry_run, "purged": purged, "due": due,
                   "cases": [v.to_json() for v in review]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if days <= 0:
        print("Retention is off (retention.days = 0): nothing is purged automatically.")
        return EXIT_OK
    for verdict in review:
        if verdict.case_id in purged:
            what = "purged"
        elif verdict.purge:
            what = "would be purged" if args.dry_run else "kept (changed meanwhile)"
        else:
            what = f"kept: {verdict.reason}" + (f" (due {verdict.due})" if verdict.due else "")
        print(f"{verdict.case_id}  {what}")
    print(f"{len(purged)} case(s) purged; retention {days} days after delivery and upload.")
    return EXIT_OK
