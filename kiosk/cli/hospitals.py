"""``kiosk hospitals``: what each issuing hospital's media did, the quality card for the office.

Per issuer (Institution Name, else the DICOMDIR's File-set ID, else the volume label — hashed
when it names a patient): media imported, instances, rejected files and quirk counts
(:mod:`kiosk.ingest.quirks`). No patient data. ``--json`` prints one object,
``{"hospitals": [...], "codes": {code: meaning}}``.
"""

from __future__ import annotations

import argparse
import json
import sys

from kiosk.ingest.quirks import CODES

EXIT_OK = 0


def cmd_hospitals(args: argparse.Namespace) -> int:
    """``kiosk hospitals [--json]``."""
    from kiosk.cli.main import _service

    cards = _service(args).hospitals()
    if args.json:
        json.dump({"hospitals": cards, "codes": CODES}, sys.stdout, ensure_ascii=False,
                  indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not cards:
        print("No media imported yet.")
        return EXIT_OK
    for card in cards:
        print(f"{card['issuer']}  ({card['from'].replace('_', ' ')})")
        print(f"  media {card['media']}, instances {card['instances']}, "
              f"rejected files {card['rejected']}, last seen {card['last_seen'][:10]}")
        for code, count in sorted(card["quirks"].items(), key=lambda q: -q[1]):
            print(f"  {count:>6}  {code}: {CODES.get(code, '')}")
    return EXIT_OK
