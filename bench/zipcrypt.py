"""AES-256 ZIP writer throughput: ``kiosk.package.aeszip`` against ``7z a -tzip -mem=AES256
-mx=0``.

Usage::

    python bench/zipcrypt.py [--workdir DIR] [--files N] [--size BYTES] [--repeat N] [--quick]

A source tree of ``--files`` files of ``--size`` bytes (default 2,000 x 512 KiB = 1 GiB of
random bytes, laid out like a PDI file-set in 20 folders) is generated once and cached in
``WORKDIR/src-NxSIZE``. Then, ``--repeat`` times and in turn, two contenders archive it into
``WORKDIR/out``:

* ``7z``: ``7z a -tzip -mem=AES256 -mx=0 -p...`` (page cache only, no fsync: what DESIGN.md §6
  measured);
* ``kiosk``: a fresh interpreter runs :class:`kiosk.package.aeszip.AesZipWriter` over the same
files: every volume fsynced and read back from the device, segment by segment while the next ones
  are written, and checked (the export's read-back; ``close`` reads back the last segment).

Before each timed run the previous output is deleted, the source is read once (all start
page-cached), ``sync`` runs and the machine is left alone for ``--settle`` seconds (DESIGN.md §6).
Figures are medians. Kiosk seconds are the child's own clock (imports excluded: the kiosk process
has them loaded already); CPU seconds are user + sys from ``wait4`` (the kiosk's include ~0.4 s
of start-up). Peak RSS is each child's own (``benchlib``). The kiosk archive is checked with
``7z t``. CPU used by other processes during a run is measured; above a quarter of a core a
WARNING is printed (the machine has 2 cores): rerun then.

Exits 0 unless an archive fails ``7z t`` (a benchmark, not a test); targets print PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchlib import (
    PASSPHRASE,
    TARGET_RSS_MB,
    Runs,
    find_7z,
    median,
    run_child,
    say,
    settle,
    seven_test,
    verdict,
    warn_if_disturbed,
)

TARGET_RATIO = 1.2  # whole export (write + verification) / 7z (issue 3)




def generate(src: Path, files: int, size: int) -> None:
    """Write ``files`` random files of ``size`` bytes under ``src`` (once; cached by a stamp)."""
    stamp = src / ".complete"
    want = f"{files} {size}\n"
    if stamp.exists() and stamp.read_text() == want:
        return
    import numpy as np

    if src.exists():
        shutil.rmtree(src)
    rng = np.random.default_rng(20240611)
    print(f"generating {files} x {size} bytes in {src} ...", file=sys.stderr)
    per_dir = max(1, files // 20)
    for i in range(files):
        d = src / "DICOM" / f"ST{i // per_dir:06d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"IM{i:06d}").write_bytes(rng.bytes(size))
    os.sync()
    stamp.write_text(want)


def source_files(src: Path) -> list[Path]:
    """Every generated file, in a stable order."""
    return sorted(p for p in src.rglob("*") if p.is_file() and p.name != ".complete")


def child(src: Path, out: Path, chunk: int) -> None:
    """The kiosk contender, in a fresh interpreter: write, read back; print JSON figures."""
    from kiosk.package.aeszip import AesZipWriter

    files = source_files(src)
    c0, t0 = time.process_time(), time.perf_counter()
    with AesZipWriter(out, "bench", PASSPHRASE, chunk_size=chunk) as writer:
        for p in files:
            writer.add_file(p.relative_to(src).as_posix(), p)
        c1, t1 = time.process_time(), time.perf_counter()
        result = writer.close()
    c2, t2 = time.process_time(), time.perf_counter()
    if not result.verified:
        raise SystemExit("the archive was not read back")
    report = {
        "write": t1 - t0,
        "total": t2 - t0,
        "cpu_write": c1 - c0,
        "cpu_readback": c2 - c1,
        "volumes": [str(v) for v in result.volumes],
    }
    print(json.dumps(report))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/kiosk-bench-zip"))
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=512 << 10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--chunk", type=int, default=4 << 20)
    ap.add_argument("--quick", action="store_true", help="20 x 64 KiB, 1 run, no settling")
    ap.add_argument("--child", nargs=2, type=Path, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child, args.chunk)
        return 0
    if args.quick:
        args.files, args.size, args.repeat, args.settle = 20, 64 << 10, 1, 0.0
    seven = find_7z()
    if seven is None:
        return 2

    src = args.workdir / f"src-{args.files}x{args.size}"
    out = args.workdir / "out"
    generate(src, args.files, args.size)
    files = source_files(src)
    mb = sum(p.stat().st_size for p in files) / 1e6
    listfile = args.workdir / f"list-{args.files}x{args.size}.txt"
    listfile.write_text("".join(p.relative_to(src).as_posix() + "\n" for p in files))
    script = Path(__file__).resolve()
    kiosk_cmd = [sys.executable, str(script), "--chunk", str(args.chunk)]
    seven_cmd = [seven, "a", "-tzip", "-mem=AES256", "-mx=0", f"-p{PASSPHRASE}", "-bd", "-bso0",
                 "-bsp0", str(out / "7z.zip"), f"@{listfile}"]  # fmt: skip

    contenders = {
        "7z": Runs("7z a -tzip -mem=AES256 -mx=0"),
        "kiosk": Runs("kiosk write + read-back"),
    }
    checked: dict[str, bool] = {}
    for i in range(args.repeat):
        for name, runs in contenders.items():
            settle(out, files, args.settle, recreate=True)
            if name == "7z":
                run = run_child(seven_cmd, cwd=src).check()
                seconds = run.wall
            else:
                run = run_child([*kiosk_cmd, "--child", str(src), str(out)]).check()
                report = json.loads(run.stdout.strip().splitlines()[-1])
                seconds = float(report["total"])
                for key in ("write", "cpu_write", "cpu_readback"):
                    runs.add(key, float(report[key]))
                runs.add("wall", run.wall)
                if i == args.repeat - 1:
                    checked[name] = seven_test(seven, report["volumes"][0], PASSPHRASE)[0]
            runs.seconds.append(seconds)
            runs.cpu.append(run.cpu)
            runs.rss_mb.append(run.rss_mb)
            runs.others.append(run.others)
            say(f"run {i + 1} {name:13s} {seconds:6.2f} s  CPU {run.cpu:5.2f} s"
                f"  others {run.others:.2f} cores")

    med = median
    t7 = med(contenders["7z"].seconds)
    kz = contenders["kiosk"]
    s7 = contenders["7z"]
    write, cpu_write = med(kz.extra["write"]), med(kz.extra["cpu_write"])
    rows: list[tuple[str, float, float, str]] = [
        (s7.label, t7, med(s7.cpu), f"{max(s7.rss_mb):.0f}"),
        ("kiosk add_file (read-back overlaps)", write, cpu_write, ""),
        ("kiosk close (fsync, last read-back)", med(kz.seconds) - write,
         med(kz.extra["cpu_readback"]), ""),
        (kz.label, med(kz.seconds), med(kz.cpu), f"{max(kz.rss_mb):.0f}"),
    ]
    print(f"\nAES-256 zip, {len(files)} files, {mb:.0f} MB, median of {args.repeat}")
    print(
        f"{'contender':36s} {'seconds':>8s} {'MB/s':>6s} {'CPU s':>6s} {'RSS MB':>7s} {'vs 7z':>6s}"
    )
    for label, secs, cpu_s, rss_s in rows:
        print(f"{label:36s} {secs:8.2f} {mb / secs:6.0f} {cpu_s:6.2f} {rss_s:>7s} {secs / t7:6.2f}")
    print("(CPU of a kiosk child includes ~0.4 s of interpreter start-up and imports)")
    ratio = med(kz.seconds) / t7
    print(f"ratio {kz.label} / 7z: {ratio:.2f} (target <= {TARGET_RATIO}) "
          f"{verdict(ratio <= TARGET_RATIO)}")
    print(f"ratio kiosk write alone / 7z: {write / t7:.2f}")
    rss = max(kz.rss_mb)
    print(f"kiosk peak RSS: {rss:.0f} MB (target < {TARGET_RSS_MB:.0f}) "
          f"{verdict(rss < TARGET_RSS_MB)}")
    for name, ok in checked.items():
        print(f"7z t of the {name} archive: {'OK' if ok else 'FAILED'}")
    warn_if_disturbed(x for r in contenders.values() for x in r.others)
    shutil.rmtree(out, ignore_errors=True)
    return 0 if all(checked.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
