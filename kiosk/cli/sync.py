"""``kiosk sync [--once]``: run the outbox (uploads) and pull translated reports.

Without ``--once`` it runs the same background loop as the app until Ctrl-C or SIGTERM. With
``--once`` it runs one round and exits with a code scripts can act on:

* 0: nothing left to do (or no cloud configured and the inbox was read);
* 1: work is waiting (the server is offline, or instances will be re-sent); run again later;
* 2: the server refused the settings (login, certificate, URL): fix them, then run again;
* 4: an upload failed for good (the server refused instances); see the listed reasons.

Progress goes to stderr, the round's summary to stdout.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import TextIO

from kiosk.cloud.sync import ERROR, OFFLINE, SyncReport, SyncStatus
from kiosk.cloud.uploader import SyncProgress

EXIT_OK, EXIT_WAITING, EXIT_REFUSED, EXIT_FAILED = 0, 1, 2, 4


class _ProgressPrinter:
    """One line per batch on a terminal (rewritten), every few seconds otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, p: SyncProgress) -> None:
        now = time.monotonic()
        final = p.done + p.failed >= p.total
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        line = (f"uploading case {p.case_id} study …{p.study_uid[-12:]}: {p.done}/{p.total} "
                f"instances, {p.bytes_sent / 1e6:.1f} MB"
                + (f", {p.failed} refused" if p.failed else ""))
        self.stream.write(("\r\x1b[K" + line + ("\n" if final else "")) if self.tty
                          else line + "\n")
        self.stream.flush()


def print_round(report: SyncReport, out: TextIO) -> None:
    """Human-readable summary of one round."""
    status = report.status
    for merged in report.merged:
        kind = "certified translation" if merged["certified"] else merged["role"]
        out.write(f"Report:    merged {merged['language']} {kind} into case "
                  f"{merged['case_id']} from {merged['source']} ({merged['pdf_name']})\n")
    for origin, reason in report.skipped.items():
        out.write(f"Skipped:   {origin}: {reason}\n")
    for name in status.unmatched_inbox:
        out.write(f"Inbox:     {name}: matches no case (name it <CASE>.en.pdf)\n")
    if report.uploaded:
        out.write(f"Uploaded:  {len(report.uploaded)} job(s) done\n")
    for failed in report.failed:
        out.write(f"FAILED:    {failed['job_id']}: {failed['error']}\n")
    jobs = status.jobs
    queue = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in jobs.items() if n)
    out.write(f"Cloud:     {status.state}: {status.message}\n")
    if status.destination:
        out.write(f"Outbox:    {queue or 'empty'}"
                  + (f"; next try {status.retry_at}" if status.state == OFFLINE
                     and status.retry_at else "") + "\n")
    out.flush()


def exit_code(status: SyncStatus) -> int:
    """The ``--once`` exit code for the status after the round."""
    if status.state == ERROR:
        return EXIT_REFUSED
    if status.jobs.get("failed"):
        return EXIT_FAILED
    if status.state == OFFLINE or any(status.jobs.get(s) for s in
                                      ("pending", "in_flight", "retry")):
        return EXIT_WAITING
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    """``kiosk sync [--once]``."""
    from kiosk.bootstrap import build_service

    service = build_service(getattr(args, "config", None), getattr(args, "data_dir", None))
    progress = _ProgressPrinter(sys.stderr)
    if args.once:
        report = service.sync_once(on_progress=progress)
        print_round(report, sys.stdout)
        return exit_code(report.status)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    loop = service.sync_loop(on_progress=progress)
    loop.on_round = lambda report: print_round(report, sys.stdout)
    print("kiosk sync: running; Ctrl-C to stop.", file=sys.stderr)
    try:
        loop.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK
