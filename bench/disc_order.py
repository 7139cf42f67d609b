"""Disc-order benchmark: an import reading files in extent order against reading them as listed.

Usage::

    python bench/disc_order.py [--files N] [--rows R] [--pairs N] [--seek-ms MS]
                               [--stroke-ms MS] [--mbps MB] [--workdir DIR]

A CD or DVD seeks in about 100 ms; the kiosk's own readers (ISO9660, UDF, FIEMAP on mounted
media) tell where each file lies (``Entry.location``) and the importer reads in ascending order
(``kiosk.ingest.importer.disc_order``). This script imports the same simulated disc twice per
pair, in a fresh kiosk each time:

* **disc order**: the source reports each file's location, as the real readers do;
* **as listed** (the baseline, what the kiosk did before): the same source hides the locations,
  so files are read in directory order.

The simulated disc is a folder of generated DICOM files whose data the "authoring tool" laid
out in another order than their names (a seeded shuffle, as burners that write in creation order
do). Every read is charged like an optical drive: a jump of more than 64 KiB costs
``--seek-ms`` plus ``--stroke-ms`` scaled by the distance over a 700 MB disc, and every byte
costs ``1/--mbps`` (48x CD ≈ 7 MB/s). The charges are real sleeps, so wall time is what a
coordinator would wait. Pairs are interleaved (order alternating); the headline is the median of
per-pair ratios (disc order / as listed), with the spread and the CPU seconds (user+sys) of
each side.

Always exits 0 (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.bootstrap import build_service  # noqa: E402
from kiosk.samples.bulk import write_study  # noqa: E402
from kiosk.sources.directory import DirectorySource  # noqa: E402
from kiosk.sources.source import MAX_DEPTH, Entry, EntryKind  # noqa: E402

DISC_BYTES = 700e6


class OpticalDrive:
    """One read head: charges seeks and transfer as real sleeps (thread-safe)."""

    def __init__(self, seek_ms: float, stroke_ms: float, mbps: float) -> None:
        self.seek_s, self.stroke_s, self.bps = seek_ms / 1000, stroke_ms / 1000, mbps * 1e6
        self.head = 0
        self.seeks = 0
        self.lock = threading.Lock()

    def read(self, position: int, size: int) -> None:
        """Move the head to ``position`` and stream ``size`` bytes."""
        with self.lock:  # one head: concurrent readers queue, as on a real drive
            distance = abs(position - self.head)
            cost = size / self.bps
            if distance > 65536:
                self.seeks += 1
                cost += self.seek_s + self.stroke_s * min(distance / DISC_BYTES, 1.0)
            time.sleep(cost)
            self.head = position + size


class _DriveFile(io.RawIOBase):
    def __init__(self, inner: BinaryIO, base: int, drive: OpticalDrive) -> None:
        super().__init__()
        self.inner, self.base, self.drive = inner, base, drive

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        pos = self.inner.tell()
        got = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        if got:
            self.drive.read(self.base + pos, got)
        return int(got or 0)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        self.inner.close()
        super().close()


class SimulatedDisc:
    """A folder read as if from an optical disc whose files lie at ``layout`` offsets."""

    filesystem = "iso9660"

    def __init__(self, root: Path, layout: dict[str, int], drive: OpticalDrive, *,
                 tell: bool) -> None:
        self.inner = DirectorySource(root)
        self.description, self.label = str(root), "SIMULATED"
        self.layout, self.drive, self.tell = layout, drive, tell

    def entries(self, max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
        for entry in self.inner.entries(max_depth):
            location = self.layout.get(entry.path) if self.tell else None
            yield replace(entry, location=location)

    def open(self, path: str) -> BinaryIO:
        raw = self.inner.open(path)
        return io.BufferedReader(_DriveFile(raw, self.layout[path], self.drive), 65536)  # type: ignore[return-value]

    def is_present(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()


def make_disc(root: Path, files: int, rows: int, seed: int) -> dict[str, int]:
    """Write the files and lay them out on the simulated disc in a shuffled order."""
    write_study(root, instances=files, rows=rows, columns=rows, seed=seed)
    source = DirectorySource(root)
    listed = [e for e in source.entries() if e.kind is EntryKind.FILE]
    burnt = listed[:]
    random.Random(seed).shuffle(burnt)
    layout, offset = {}, 1 << 20  # after the volume descriptors and directory records
    for entry in burnt:
        layout[entry.path] = offset
        offset += (entry.size + 2047) // 2048 * 2048  # sector aligned, as on a disc
    return layout


def one_import(disc: Path, layout: dict[str, int], args: argparse.Namespace,
               tell: bool) -> tuple[float, float, int, int]:
    """Import the simulated disc into a fresh kiosk; (wall s, cpu s, seeks, verified)."""
    with tempfile.TemporaryDirectory(dir=args.workdir) as data:
        service = build_service(data_dir=data)
        drive = OpticalDrive(args.seek_ms, args.stroke_ms, args.mbps)
        source = SimulatedDisc(disc, layout, drive, tell=tell)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        report = service.import_source(source)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, drive.seeks, report["instances"]["verified"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rows", type=int, default=128, help="image size (rows = columns)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seek-ms", type=float, default=30.0, help="cost of any jump")
    parser.add_argument("--stroke-ms", type=float, default=70.0, help="added for a full stroke")
    parser.add_argument("--mbps", type=float, default=7.0, help="transfer rate, MB/s")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-disc-order-", dir=args.workdir))
    try:
        disc = work / "disc"
        layout = make_disc(disc, args.files, args.rows, seed=7)
        size = sum((disc / p).stat().st_size for p in layout)
        print(f"simulated disc: {len(layout)} files, {size / 1e6:.1f} MB, laid out shuffled; "
              f"seek {args.seek_ms:g} ms + {args.stroke_ms:g} ms/full stroke, "
              f"{args.mbps:g} MB/s")
        one_import(disc, layout, args, tell=True)  # warm-up: imports, page cache
        rows: list[tuple[float, float, float, float, int, int]] = []
        for pair in range(args.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            got = {tell: one_import(disc, layout, args, tell) for tell in order}
            (dw, dc, ds, dv), (lw, lc, ls, lv) = got[True], got[False]
            assert dv == lv == len(layout), "every file must import and verify both ways"
            rows.append((dw, dc, lw, lc, ds, ls))
            print(f"pair {pair + 1}: disc order {dw:6.2f} s ({ds} seeks, {dc:.2f} CPU-s)   "
                  f"as listed {lw:6.2f} s ({ls} seeks, {lc:.2f} CPU-s)   "
                  f"ratio {dw / lw:.3f}")
        ratios = [r[0] / r[2] for r in rows]
        print()
        print(f"disc order, wall s:  median {statistics.median(r[0] for r in rows):.2f} "
              f"(min {min(r[0] for r in rows):.2f}, max {max(r[0] for r in rows):.2f}); "
              f"CPU-s median {statistics.median(r[1] for r in rows):.2f}")
        print(f"as listed,  wall s:  median {statistics.median(r[2] for r in rows):.2f} "
              f"(min {min(r[2] for r in rows):.2f}, max {max(r[2] for r in rows):.2f}); "
              f"CPU-s median {statistics.median(r[3] for r in rows):.2f}")
        print(f"ratio disc order / as listed, per pair: median {statistics.median(ratios):.3f} "
              f"(spread {min(ratios):.3f}-{max(ratios):.3f}); speed-up "
              f"{1 / statistics.median(ratios):.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
