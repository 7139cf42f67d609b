"""Every case's ``kiosk cases --json`` line, newest first, in memory that stays flat.

The index keeps each case's line encoded (:mod:`kiosk.store.case_index`), but the buckets are
keyed by case id, not time, so the newest-first order is only known once every bucket has
been read. Rather than hold every line until then (~0.4 kB a case, and as much again in the
allocator's leftovers), the lines are spooled to an unnamed temporary file as they are read;
only the sort key and the line's place stay in memory, and the lines are read back in order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiosk.store.case_index import listing_key
from kiosk.store.database import Database


def _sort_key(lean: dict[str, Any]) -> bytes:
    """The listing key as bytes in the same order: fixed-width time and fraction, then the
    case id and a NUL (below any character, so "C1" sorts before "C10" as in a tuple)."""
    created, ts, case_id = listing_key(lean)
    return f"{created:<24}{ts:020.6f}{case_id}\0".encode()


def newest_first_lines(db: Database, spool_dir: Path, *,
                       since: str | None = None) -> Iterator[bytes]:
    """Each case's summary line (UTF-8), newest first; only cases created on or after
    ``since`` when given.

    Spooled in ``spool_dir`` (the data directory's ``tmp/``: the file has no name, so nothing
    is left behind whatever happens); where no file can be made there, the lines are held in
    memory instead.
    """
    try:
        spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - closed below
    except OSError:
        yield from _in_memory(db, since)
        return
    with spool:
        at = 0

        def pick(lean: dict[str, Any]) -> tuple[str, float, str, int, int] | None:
            nonlocal at
            created = lean.get("created") or ""
            if since and created < since:
                return None
            line = lean["line"].encode("utf-8")
            spool.write(line)
            at += len(line)
            # The listing key (:func:`listing_key`), then where the line is in the spool.
            return created, lean.get("ts") or 0.0, lean["case_id"], at - len(line), len(line)

        keys = db.listing(pick)
        spool.flush()
        keys.sort(reverse=True)  # case ids are unique: no two tuples get past them
        fd = spool.fileno()
        for _created, _ts, _case_id, start, size in keys:
            yield os.pread(fd, size, start)


def _in_memory(db: Database, since: str | None) -> Iterator[bytes]:
    def pick(lean: dict[str, Any]) -> bytes | None:
        if since and (lean.get("created") or "") < since:
            return None
        return _sort_key(lean) + lean["line"].encode("utf-8")

    keyed = db.listing(pick)
    keyed.sort(reverse=True)
    for item in keyed:
        yield item[item.index(b"\0") + 1:]
