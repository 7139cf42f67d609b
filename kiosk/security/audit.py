"""Append-only audit trail: one JSON line per event, each carrying the hash of the one before.

Appending a line is O(1) (a tinydb table would rewrite the whole database per event). Entries
hold ids and hashes, never images or names. :func:`verify_trail` (``kiosk audit verify``) finds
an edited, inserted or deleted entry and says which.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kiosk.store.catalog import now_iso

GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry without its own ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """The audit trail file."""

    def __init__(self, path: Path, kiosk_id: str) -> None:
        self.path = path
        self.kiosk_id = kiosk_id

    def append(self, action: str, **details: Any) -> dict[str, Any]:
        """Append one event durably and return it."""
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            prev, seq = self._last(fh)
            entry = {"seq": seq + 1, "time": now_iso(), "kiosk": self.kiosk_id,
                     "action": action, "details": details, "prev": prev}
            entry["hash"] = entry_hash(entry)
            fh.seek(0, os.SEEK_END)
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    @staticmethod
    def _last(fh: Any) -> tuple[str, int]:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return GENESIS, 0
        fh.seek(max(0, size - 65536))
        tail = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            last = json.loads(tail)
            return str(last["hash"]), int(last["seq"])
        except (ValueError, KeyError):
            # A torn last line (power cut mid-append): chain onto its hash so the damage shows.
            return hashlib.sha256(tail).hexdigest(), -1

    def entries(self) -> list[dict[str, Any]]:
        """All entries (for tests; the Admin screen reads :meth:`tail`)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]

    def tail(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` entries, newest last, read from the end of the file only."""
        if limit <= 0 or not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            block, data = 65536, b""
            while end > 0 and data.count(b"\n") <= limit:
                start = max(0, end - block)
                fh.seek(start)
                data = fh.read(end - start) + data
                end = start
                block *= 2
        lines = [line for line in data.split(b"\n") if line.strip()]
        if end > 0:
            lines = lines[1:]  # the first may be cut: there are enough whole ones after it
        out = []
        for line in lines[-limit:]:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn line: verify_trail reports it
        return out


def count_entries(path: Path) -> int:
    """How many lines the trail holds, counted in blocks (nothing is parsed or kept)."""
    if not path.exists():
        return 0
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def verify_trail(path: Path) -> list[str]:
    """Check the whole chain; return one sentence per problem (empty: intact).

    An edited entry no longer matches its own hash; an inserted or deleted entry breaks the
    ``prev`` link and the sequence numbers after it. Each problem names the line and ``seq``.
    """
    if not path.exists():
        return []
    problems: list[str] = []
    prev, expected_seq = GENESIS, 1
    with open(path, "rb") as fh:  # streamed: memory stays flat however long the trail
        for lineno, line in enumerate(fh, start=1):
            prev, expected_seq = _check_line(line.rstrip(b"\r\n"), lineno, prev,
                                             expected_seq, problems)
    return problems


def _check_line(line: bytes, lineno: int, prev: str, expected_seq: int,
                problems: list[str]) -> tuple[str, int]:
    """Check one line against the chain; return the chain's state after it."""
    try:
        entry = json.loads(line)
        seq, stored = int(entry["seq"]), str(entry["hash"])
    except (ValueError, KeyError, TypeError):
        problems.append(f"line {lineno}: not a readable audit entry (torn or edited)")
        return hashlib.sha256(line).hexdigest(), expected_seq + 1
    if entry_hash(entry) != stored:
        problems.append(f"line {lineno} (seq {seq}): entry was edited after it was written")
    if entry.get("prev") != prev:
        problems.append(f"line {lineno} (seq {seq}): does not follow the entry before it "
                        "(an entry was inserted or deleted here)")
    if seq != expected_seq:
        problems.append(f"line {lineno}: seq {seq} where {expected_seq} was expected")
    return stored, seq + 1
