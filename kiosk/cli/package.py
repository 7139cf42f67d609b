"""``kiosk package verify DIR``: check a package on a stick against its signed manifest.

Needs no kiosk data directory: an office or a doctor's machine can run it. Exit 0 when the
signature holds and every file matches, 4 when anything does not (each file named), 2 for a
wrong passphrase or a folder that is not a package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kiosk.links.manifest_signature import check_manifest_signature
from kiosk.links.signing_key import read_public_key
from kiosk.package.verify import PackageCheck, verify_package

EXIT_OK, EXIT_INVALID = 0, 4


def _what(counts: dict[str, int]) -> str:
    images = counts["images"]
    parts = [f"{images} image{'s' if images != 1 else ''}"]
    if counts["originals"]:
        parts.append("the original report" if counts["originals"] == 1
                     else f"{counts['originals']} original reports")
    if counts["translations"]:
        parts.append("its certified translation" if counts["translations"] == 1
                     else f"{counts['translations']} certified translations")
    return ", ".join(parts)


def verified_line(check: PackageCheck) -> str:
    """The one-line verdict, as the page's banner words it."""
    m = check.manifest
    day = str(m.get("created", ""))[:10]
    return (f"Verified: {_what(check.counts())}, from kiosk {m.get('kiosk_id')} on {day} "
            f"(key fingerprint {check.fingerprint}).")


def cmd_package(args: argparse.Namespace) -> int:
    """``kiosk package verify DIR [--key PEM] [--passphrase P] [--json]``."""
    trusted = read_public_key(Path(args.key)) if args.key else None
    check = verify_package(
        Path(args.folder), passphrase=args.passphrase,
        check_signature=lambda jws, raw: check_manifest_signature(jws, raw, trusted))
    if args.json:
        print(json.dumps(check.to_json(), ensure_ascii=False, indent=1))
    elif check.ok:
        print(verified_line(check))
        if not check.pinned:
            print("The key was not pinned (--key PEM, from `kiosk link pubkey`): compare the "
                  "fingerprint with the one on the patient's slip.")
    else:
        n = len(check.problems)
        print(f"NOT VERIFIED: {n} problem{'s' if n != 1 else ''} in {check.folder}",
              file=sys.stderr)
        for p in check.problems:
            print(f"  {p['path']}: {p['problem']}", file=sys.stderr)
    return EXIT_OK if check.ok else EXIT_INVALID
