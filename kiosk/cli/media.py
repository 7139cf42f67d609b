"""``kiosk watch`` and ``kiosk doctor``: media events as they happen; what works on this machine.

``kiosk watch --json`` prints one JSON object per line and flushes each line, so a script can
follow it through a pipe: ``action`` (insert/remove/change), ``device``, ``role``,
``role_reason``, ``kind``, ``label``, ``fs_type``, ``uuid``, ``vendor``, ``model``,
``serial``, ``size``, ``read_only``, ``disk``. Media already inserted are reported first.
A line "watching ..." on stderr says the watcher is listening. Ctrl-C (SIGINT) or SIGTERM
ends it with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from kiosk.cli.doctor import Check, Status, run_checks
from kiosk.config import Config, load_config
from kiosk.media.medium import MediaEvent
from kiosk.store.locations import Locations, default_config_file

EXIT_OK, EXIT_PROBLEM = 0, 1
#: How often ``kiosk watch`` checks whether it was asked to stop.
_STOP_CHECK_SECONDS = 0.5


def _settings(args: argparse.Namespace) -> tuple[Config, Locations]:
    """Configuration and locations without opening the store (neither command needs it)."""
    from kiosk.bootstrap import resolve_data_dir

    env = dict(os.environ)
    config_file = getattr(args, "config", None)
    config = load_config(Path(config_file) if config_file else default_config_file(env), env)
    return config, Locations(resolve_data_dir(config, getattr(args, "data_dir", None), env))


def format_event(event: MediaEvent) -> str:
    """One human-readable line for an event."""
    m = event.medium
    who = " ".join(x for x in (m.vendor, m.model) if x) or "unknown device"
    return (f"{event.action.value:<6}  {m.device:<12}  {m.role.value:<7}  {m.kind.value:<8}  "
            f"{m.fs_type or '-':<7}  {m.label or '(no label)'}  {_size(m.size)}  {who}"
            f"  ({m.role_reason})")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def cmd_watch(args: argparse.Namespace) -> int:
    """``kiosk watch [--json]``: print media events until interrupted (exit 0 on Ctrl-C)."""
    from kiosk.bootstrap import build_media_desk

    _config, locations = _settings(args)
    desk = build_media_desk(locations)
    out: TextIO = sys.stdout
    stop = threading.Event()
    # The handlers only set a flag, checked at least every half second: an exception raised
    # from a signal handler can be swallowed when it lands in a finalizer (pyudev's devices
    # have one), and the signal may be delivered to a library's thread. A script that runs
    # `kiosk watch &` starts it with SIGINT ignored (shells do that to background jobs) and
    # stops it with `kill -INT` or `kill`: both end it cleanly with 0.
    previous = {sig: signal.signal(sig, lambda _sig, _frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("kiosk watch: watching for discs and sticks (Ctrl-C to stop)", file=sys.stderr,
              flush=True)
        while not stop.is_set():
            for event in desk.poll(_STOP_CHECK_SECONDS):
                if args.json:
                    out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
                else:
                    out.write(format_event(event) + "\n")
                out.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        desk.close()
    return EXIT_OK


def print_checks(checks: list[Check], out: TextIO) -> None:
    """The doctor's report: status, name, detail, and the fix under anything not ok."""
    for check in checks:
        out.write(f"{check.status.value:<4}  {check.name:<8}  {check.detail}\n")
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            out.write(f"{'':<14}fix: {check.fix}\n")
    failed = [c.name for c in checks if c.failed]
    if failed:
        out.write(f"\n{len(failed)} essential check(s) failed: {', '.join(failed)}.\n")
    else:
        out.write("\nAll essential checks passed.\n")


def cmd_doctor(args: argparse.Namespace) -> int:
    """``kiosk doctor``: exit 0 when every essential check passes, else 1."""
    config, locations = _settings(args)
    checks = run_checks(config, locations)
    print_checks(checks, sys.stdout)
    return EXIT_PROBLEM if any(c.failed for c in checks) else EXIT_OK
