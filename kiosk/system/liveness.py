"""Is the process that claimed a job still running? (pid + boot id: a pid from before a
reboot means nothing, and pids are reused.)"""

from __future__ import annotations

import os
from pathlib import Path


def boot_id() -> str:
    """This boot's id, or "" where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_alive(claim_boot: str | None, claim_pid: int) -> bool:
    """Whether a job claimed by ``claim_pid`` during boot ``claim_boot`` is still being worked."""
    return claim_boot == boot_id() and claim_pid > 0 and process_alive(claim_pid)
