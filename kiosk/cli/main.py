"""The ``kiosk`` command line (DESIGN.md §4: a contract scripts rely on).

``--json`` prints exactly one JSON object on stdout; everything else (progress, logs) goes to
stderr. Exit codes: 0 success, 2 usage or configuration error, 3 nothing importable found,
4 verification failed or the import did not complete.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kiosk import __version__
from kiosk.cli import gateway as gateway_cli
from kiosk.errors import KioskError, UsageError
from kiosk.ingest.identity import patient_ids
from kiosk.sources.scan_limits import format_bytes
from kiosk.store.case_index import summary_line

if TYPE_CHECKING:  # kiosk.ingest.importer loads pydicom: `kiosk export` starts work before that
    from kiosk.ingest.importer import ImportProgress

EXIT_OK, EXIT_USAGE, EXIT_NOTHING, EXIT_VERIFY = 0, 2, 3, 4


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a value given before the sub-command from being reset by the sub-parser.
    parser.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="kiosk data directory (env KIOSK_DATA_DIR)")
    parser.add_argument("--config", default=argparse.SUPPRESS,
                        help="TOML configuration file (env KIOSK_CONFIG)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="kiosk", description="MedPass Kiosk: hospital imaging media to a patient package.")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p)
        return p

    add("demo", "the full kiosk on simulated media and an embedded sample hospital disc")
    p = add("import", "import a directory, an .iso file or a block device")
    p.add_argument("source", help="mounted disc or stick, ISO image, or /dev/srN")
    p.add_argument("--case", dest="case_id", help="add to this case (created if new)")
    p.add_argument("--same-person", action="store_true",
                   help="with --case: the patients found are the case's person, whatever their "
                        "ids (without it, each other patient gets a case of their own)")
    p.add_argument("--archive-password", metavar="P",
                   help="password of encrypted zip archives on the medium (hospitals often use "
                        "the patient's birth date)")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    p = add("cases", "list cases, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N cases")
    p.add_argument("--since", type=_date, metavar="DATE",
                   help="only cases created on or after DATE (YYYY-MM-DD)")
    p.add_argument("--find", metavar="TEXT",
                   help="only cases whose number, patient id or name (Latin or Chinese), "
                        "passport name or date contains every word of TEXT")
    p = add("export", "write the patient package to a directory or mounted stick")
    p.add_argument("case_id")
    p.add_argument("--to", required=True)
    p.add_argument("--no-encryption", action="store_true")
    p.add_argument("--json", action="store_true")
    p = add("qr", "print the link and QR code, or write a PNG")
    p.add_argument("case_id")
    p.add_argument("--png")
    p.add_argument("--print", action="store_true", help="also print the patient slip")
    p.add_argument("--json", action="store_true",
                   help="print the link as JSON (url, id, passcode, expiry, QR version)")
    p = add("sync", "run the outbox: uploads and translation pulls")
    p.add_argument("--once", action="store_true")
    p = add("watch", "print media events as they happen")
    p.add_argument("--json", action="store_true")
    p = add("link", "links: verify a token, print this kiosk's public key, revoke or reissue")
    p.add_argument("action", choices=["verify", "pubkey", "revoke", "reissue"])
    p.add_argument("token", nargs="?", metavar="TOKEN|CASE|ID",
                   help="verify: the token (- reads it from stdin); revoke: a case or a "
                        "link id; reissue: a case")
    p.add_argument("--study", help="the Study Instance UID the token is presented for")
    p.add_argument("--key", help="Ed25519 public key (PEM) to verify with; default: this kiosk's")
    p.add_argument("--revoked", help="revocation list file; default: link.revocation_list")
    p = add("package", "check a package on a stick against its signed manifest")
    p.add_argument("action", choices=["verify"])
    p.add_argument("folder", help="the package's folder (MEDPASS_<case>_<date> on the stick)")
    p.add_argument("--key", help="Ed25519 public key (PEM, `kiosk link pubkey`) it must be "
                                 "signed with; default: the key in the signature")
    p.add_argument("--passphrase", metavar="P", help="the passphrase on the patient's slip")
    p.add_argument("--json", action="store_true", help="print the check as JSON")
    p = add("audit", "the audit trail")
    p.add_argument("action", choices=["verify"])
    p = add("pin", "the coordinator PIN: set it (typed twice, or from stdin), or its status")
    p.add_argument("action", choices=["set", "status"])
    p.add_argument("--json", action="store_true")
    p = add("retention", "purge cases delivered and uploaded more than retention.days ago")
    p.add_argument("--dry-run", action="store_true", help="only list what would be purged")
    p.add_argument("--json", action="store_true")
    add("doctor", "check udev, mounts, printer, disk space, cloud reachability")
    p = add("hospitals", "quirks seen per issuing hospital (no patient data)")
    p.add_argument("--json", action="store_true")
    gateway_cli.add_arguments(add("gateway", "the office gateway (an Orthanc plugin): write "
                                             "its configuration (docs/gateway.md)"))
    return parser


def _service(args: argparse.Namespace) -> Any:
    from kiosk.bootstrap import build_service

    service = build_service(getattr(args, "config", None), getattr(args, "data_dir", None))
    # The modules and the service just loaded live as long as the process: keep the cyclic
    # collector from walking them again and again while an export or import allocates (about
    # 2% of a 1 GiB export's CPU).
    gc.freeze()
    return service


class _ProgressPrinter:
    """Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, p: ImportProgress) -> None:
        now = time.monotonic()
        final = p.phase in ("verifying", "saving", "done")
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        mb = p.bytes_done / 1e6
        rate = mb / p.elapsed if p.elapsed > 0 else 0.0
        eta = ""
        if rate > 0 and p.bytes_total > p.bytes_done and p.phase == "copying":
            eta = f", ETA {int((p.bytes_total - p.bytes_done) / 1e6 / rate)} s"
        line = (f"{p.phase}: {p.files_done}/{p.files_total} files, {mb:.1f}/"
                f"{p.bytes_total / 1e6:.1f} MB, {rate:.1f} MB/s{eta}  {p.current[-40:]}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if p.phase == "done" else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def import_exit_code(report: dict[str, Any]) -> int:
    """0 when everything found was stored and verified; 3 when nothing was; else 4."""
    found = report["instances"]["found"]
    if found == 0:
        return EXIT_VERIFY if report.get("error") else EXIT_NOTHING
    if not report["complete"] or report["instances"]["verified"] < found:
        return EXIT_VERIFY
    if report["verification"]["problems"]:
        return EXIT_VERIFY
    return EXIT_OK


def print_import_summary(report: dict[str, Any], out: TextIO) -> None:
    """Human-readable summary of an import report."""
    inst = report["instances"]
    out.write(f"Source:    {report['source']} ({report.get('label') or 'no label'})\n")
    cases = report.get("cases") or []
    if len(cases) > 1:
        names = {p["patient_id"]: p["name_display"] for p in report["patients"]}
        out.write(f"Patients:  {len(names)} found; a case is for one person, so each is filed "
                  "in a case of their own:\n")
        for case in cases:
            who = ", ".join(f"{names.get(pid, '?')}  ID {pid}" for pid in case["patient_ids"])
            out.write(f"Case:      {case['case_id']}  {who}\n")
    else:
        out.write(f"Case:      {report['case_id'] or '(none: nothing imported)'}\n")
        for p in report["patients"]:
            out.write(f"Patient:   {p['name_display']}  ID {p['patient_id']}\n")
    for s in report["studies"]:
        out.write(f"Study:     {s['study_date']} {'/'.join(s['modalities'])} "
                  f"{s['description']!s:.30}  {s['series']} series, {s['instances']} images\n")
    out.write(f"Images:    {inst['found']} found, {inst['imported']} new, "
              f"{inst['duplicates']} already in the case, {inst['verified']} verified "
              f"({report['bytes'] / 1e6:.1f} MB in {report.get('seconds', 0):.1f} s)\n")
    dd = report["dicomdir"]
    if dd["present"]:
        out.write(f"DICOMDIR:  {dd['records']} records, {len(dd['missing'])} missing, "
                  f"{len(dd['unlisted'])} files not listed\n")
    if report["rejected"]:
        out.write(f"Rejected:  {len(report['rejected'])} file(s) looked like DICOM but could "
                  "not be read:\n")
        for r in report["rejected"][:20]:
            out.write(f"  {r['path']}: {r['reason']}\n")
    if report["ignored"]:
        out.write(f"Ignored:   {len(report['ignored'])} file(s) that are not DICOM\n")
    for a in report.get("archives") or []:
        encrypted = f", {a['encrypted']} encrypted" if a["encrypted"] else ""
        problem = f": {a['problem']}" if a["problem"] else ""
        out.write(f"Archive:   {a['path']}: {a['members']} file(s), {a['imported']} image(s) "
                  f"imported{encrypted}{problem}\n")
    limits = report.get("limits") or {}
    if limits.get("too_deep"):
        out.write(f"Limit:     {limits['too_deep']} folder(s) nested more than "
                  f"{limits['max_depth']} deep were not searched (import.max_depth)\n")
    if limits.get("too_large"):
        out.write(f"Limit:     {limits['too_large']} DICOM file(s) larger than "
                  f"{format_bytes(limits['max_file_bytes'])} were not copied "
                  "(import.max_file_bytes)\n")
    for problem in report["verification"]["problems"][:20]:
        out.write(f"PROBLEM:   {problem['path']}: {problem['problem']}\n")
    for w in report["warnings"]:
        out.write(f"Warning:   {w}\n")
    if report["error"]:
        out.write(f"ERROR:     {report['error']}\n")
    no_dicom = report.get("no_dicom")
    if no_dicom:
        out.write(f"\nNo DICOM:  {no_dicom['en']}\n")
        out.write(f"无DICOM:   {no_dicom['zh']}\n")
        for pdf in report["contents"]["pdfs"][:5]:
            out.write(f"PDF:       {pdf}\n")


def cmd_import(args: argparse.Namespace) -> int:
    """``kiosk import``."""
    if args.same_person and not args.case_id:
        raise UsageError("--same-person confirms that the patients found are the person of the "
                         "case given with --case CASE; add --case.")
    service = _service(args)
    prior: list[str] = []
    if args.case_id:
        existing = service.catalog.case(args.case_id)
        prior = patient_ids(existing) if existing else []
    report = service.import_path(args.source, case_id=args.case_id,
                                 on_progress=_ProgressPrinter(sys.stderr),
                                 archive_password=args.archive_password)
    # One person per case: the others found go to cases of their own (DESIGN.md §1 step 2).
    report["cases"] = service.file_by_patient(report, prior=prior,
                                              same_person=args.same_person)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        if report.get("no_dicom"):  # the one thing a script's operator must read
            print(f"kiosk import: {report['no_dicom']['en']}\n{report['no_dicom']['zh']}",
                  file=sys.stderr)
        for a in report.get("archives") or []:  # so is a password that is missing or wrong
            if a["locked"]:
                print(f"kiosk import: archive {a['path']}: {a['problem']}", file=sys.stderr)
    else:
        print_import_summary(report, sys.stdout)
    return import_exit_code(report)


def _positive(text: str) -> int:
    """``--limit``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of cases (1 or more) / 不是有效的病例数量（至少为 1）")
    return value


def _date(text: str) -> str:
    """``--since``: ``YYYY-MM-DD`` (``YYYYMMDD`` and ``YYYY/MM/DD`` are read too)."""
    import re

    m = re.fullmatch(r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})", text.strip())
    if m is None or not (1 <= int(m[2]) <= 12 and 1 <= int(m[3]) <= 31):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write YYYY-MM-DD / 不是有效日期，请写成 YYYY-MM-DD")
    return f"{m[1]}-{m[2]}-{m[3]}"


def _write_json_list(key: str, items: Iterable[bytes]) -> None:
    """``{key: [items]}`` on stdout, each item already JSON (UTF-8), one a line.

    The same document as ``json.dump(..., indent=2)`` for a parser, at a tenth of the cost: an
    indent makes :mod:`json` fall back from its C encoder to pure Python, which at 3,000 cases
    cost more than reading them. Items may come one at a time (a listing of every case is
    read back from a spool as it is printed).
    """
    out = sys.stdout
    raw = getattr(out, "buffer", None)  # None: a text stream (tests capture one)

    def write(data: bytes) -> None:
        if raw is None:
            out.write(data.decode("utf-8"))
        else:
            raw.write(data)

    out.write(f"{{{json.dumps(key)}: [")
    out.flush()
    n = 0
    for n, item in enumerate(items, 1):
        write(b",\n  " if n > 1 else b"\n  ")
        write(item)
    if raw is not None:
        raw.flush()
    out.write("\n]}\n" if n else "]}\n")


def _compact(item: dict[str, Any]) -> bytes:
    return summary_line(item).encode("utf-8")


def cmd_cases(args: argparse.Namespace) -> int:
    """``kiosk cases [--limit N] [--since DATE] [--find TEXT]``: newest first, from the index."""
    from kiosk.store.open_catalog import open_catalog

    catalog = open_catalog(getattr(args, "config", None), getattr(args, "data_dir", None))
    limit, since, find = (getattr(args, k, None) for k in ("limit", "since", "find"))
    if args.json and limit is None and not find:
        # Every case: encoded as the index is read, so memory stays flat with the cases.
        _write_json_list("cases", catalog.summary_lines(since=since))
        return EXIT_OK
    cases = catalog.case_summaries(limit=limit, since=since, find=find)
    if args.json:
        _write_json_list("cases", [_compact(c) for c in cases])
        return EXIT_OK
    if not cases and (getattr(args, "find", None) or getattr(args, "since", None)):
        print("No case matches. / 没有符合条件的病例。")
    elif not cases:
        print("No cases yet. Insert a disc or run `kiosk import SOURCE`.")
    for c in cases:
        names = ", ".join(p["name_display"] for p in c["patients"]) or "?"
        print(f"{c['case_id']}  {c['status']:<10}  {names}  {'/'.join(c['modalities'])}  "
              f"{c['studies']} studies, {c['instances']} images")
    return EXIT_OK


def _desk_ui(name: str) -> Callable[..., int]:
    """The desk UI's entry point ``name`` (group ``medpass_kiosk.ui`` in pyproject.toml).

    The UI is found through the installed entry points rather than imported, so no core module
    imports Textual or ``kiosk_tui`` (the layer contract) and a headless install runs every
    other command without them.

    Raises
    ------
    UsageError
        If the desk UI is not installed with this kiosk.
    """
    found = entry_points(group="medpass_kiosk.ui", name=name)
    if not found:
        raise UsageError("The desk UI is not installed with this kiosk; reinstall medpass-kiosk "
                         "with its UI (bash .ci/install), or use the other kiosk commands.")
    start: Callable[..., int] = next(iter(found)).load()
    return start


def cmd_demo(args: argparse.Namespace) -> int:
    """``kiosk demo``: the desk UI on simulated media, the sample disc and a sample translation.

    Everything lives in a temporary folder (unless ``--data-dir`` or ``KIOSK_DATA_DIR`` says
    otherwise): a demo never touches real patient data.
    """
    with tempfile.TemporaryDirectory(prefix="kiosk-demo-") as tmp:
        if not getattr(args, "data_dir", None) and not os.environ.get("KIOSK_DATA_DIR"):
            args.data_dir = str(Path(tmp) / "data")
        service = _service(args)
        run_demo = _desk_ui("demo")
        return run_demo(service, Path(tmp) / "media", config_file=getattr(args, "config", None))


def cmd_desk(args: argparse.Namespace) -> int:
    """``kiosk`` with no command: the appliance's desk UI with real device detection (udev)."""
    from kiosk.bootstrap import attach_media

    service = _service(args)
    desk = attach_media(service)
    desk.cleanup_stale()  # mounts a crashed kiosk left behind
    try:
        run_app = _desk_ui("desk")
        return run_app(service, config_file=getattr(args, "config", None))
    finally:
        desk.close()


def cmd_export(args: argparse.Namespace) -> int:
    """``kiosk export``: write, verify and report the patient package."""
    from kiosk.package.export import start_keys

    # First: the entry keys (PBKDF2, ~1 ms per file) are derived while the rest loads.
    keys = start_keys(not args.no_encryption)
    try:
        service = _service(args)
    except BaseException:
        if keys is not None:
            keys.close()
        raise
    report = service.export_case(args.case_id, args.to, encrypt=not args.no_encryption,
                                 on_progress=_ExportProgressPrinter(sys.stderr), keys=keys)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"Written and verified: {report['folder']}")
    print(f"  {report['files']} files, {report['bytes'] / 1e6:.1f} MB, "
          f"{'encrypted (AES-256 zip)' if report['encrypted'] else 'NOT encrypted'}")
    if report.get("passphrase"):
        print(f"\n  PASSPHRASE / 密码:  {report['passphrase']}\n")
        print("  Give it to the patient now (printed slip). It is not stored anywhere.")
    return EXIT_OK


class _ExportProgressPrinter:
    """Export progress on stderr, throttled like the import's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if p.phase == "writing" and now - self.last < 1.0:
            return
        self.last = now
        rate = p.bytes_done / 1e6 / p.elapsed if p.elapsed > 0 else 0.0
        self.stream.write(f"{p.phase}: {p.bytes_done / 1e6:.1f}/{p.bytes_total / 1e6:.1f} MB, "
                          f"{rate:.1f} MB/s  {p.current[-40:]}\n")
        self.stream.flush()


def cmd_audit(args: argparse.Namespace) -> int:
    """``kiosk audit verify``: 0 when the chain is intact, 4 with each problem on stderr."""
    from kiosk.security.audit import count_entries, verify_trail

    service = _service(args)
    problems = verify_trail(service.locations.audit_file)
    for problem in problems:
        print(f"kiosk audit verify: {problem}", file=sys.stderr)
    if problems:
        return EXIT_VERIFY
    print(f"Audit trail intact: {count_entries(service.locations.audit_file)} entries.")
    return EXIT_OK


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A sub-command whose module loads only when it runs: `kiosk import` then never pays for
    the HTTP client, JWT, QR and udev imports (about a quarter of a second at every start)."""

    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), name)
        return command(args)

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "import": cmd_import,
    "cases": cmd_cases,
    "demo": cmd_demo,
    "export": cmd_export,
    "qr": _lazy("kiosk.cli.link", "cmd_qr"),
    "sync": _lazy("kiosk.cli.sync", "cmd_sync"),
    "watch": _lazy("kiosk.cli.media", "cmd_watch"),
    "link": _lazy("kiosk.cli.link", "cmd_link"),
    "package": _lazy("kiosk.cli.package", "cmd_package"),
    "audit": cmd_audit,
    "pin": _lazy("kiosk.cli.security", "cmd_pin"),
    "retention": _lazy("kiosk.cli.security", "cmd_retention"),
    "doctor": _lazy("kiosk.cli.media", "cmd_doctor"),
    "hospitals": _lazy("kiosk.cli.hospitals", "cmd_hospitals"),
    "gateway": _lazy("kiosk.cli.gateway", "cmd_gateway"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kiosk`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 for --help/--version
        return int(exc.code or 0)
    command = args.command
    try:
        if command is None:
            command = "desk"
            return cmd_desk(args)
        return COMMANDS[command](args)
    except KioskError as exc:
        print(f"kiosk {command}: {exc.title}: {exc.text}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"kiosk {command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
