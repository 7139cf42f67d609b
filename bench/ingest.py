"""Import throughput benchmark: ``kiosk import`` against ``cp -r && sync`` (DESIGN.md §6).

Usage::

    python bench/ingest.py [--workdir DIR] [--big N] [--small N] [--repeat N] [--quick]
                           [--settle S] [--config TOML] [--only big|small] [--regen]

Three trees are generated once and cached in the work directory (``src/``):

* ``big``: ``--big`` instances of 512×512×16-bit (2,000 ≈ 1 GiB), the DESIGN.md reference case;
* ``small``: ``--small`` instances of 64×64 (10,000), and ``small/10`` of them (1,000), to check
  that the cost per instance stays flat as the medium grows.

For every tree, the baseline (``cp -r SRC DST && sync``) and the kiosk import (a fresh
``kiosk --data-dir D import SRC --json`` subprocess: verification, syncfs and the database
included) are timed alternately ``--repeat`` times and the medians are reported. Before each timed
run the previous output is deleted, the source is read once (so both sides start page-cached),
``sync`` runs and the machine is left alone for ``--settle`` seconds (DESIGN.md §6: figures skew
otherwise). Peak RSS is the child's own ``ru_maxrss`` from ``wait4``.

Always exits 0 (a benchmark, not a test); each target is printed with PASS or MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Targets (DESIGN.md §6 and the performance brief).
TARGET_RATIO = 1.5  # kiosk / (cp -r && sync) on the big tree, verification included
TARGET_RSS_MB = 200.0  # peak RSS of the import process, any tree
TARGET_FLAT = 1.25  # per-instance cost, many small / few small (1.0 = perfectly flat)
FOREIGN_WARN = 0.25  # CPU used by other processes during a run, in cores, before we warn

_KIOSK = "import sys\nfrom kiosk.cli import main\nsys.exit(main())"
_READ_BUF = bytearray(1024 * 1024)


@dataclass(frozen=True)
class Tree:
    """One generated source tree."""

    name: str
    instances: int
    rows: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.name}-{self.instances}"

    def path(self, workdir: Path) -> Path:
        return workdir / "src" / f"{self.name}-{self.instances}x{self.rows}"


@dataclass
class Result:
    """Measurements of one tree."""

    tree: Tree
    files: int = 0
    nbytes: int = 0
    baseline: list[float] = field(default_factory=list)
    kiosk: list[float] = field(default_factory=list)  # wall time of the whole subprocess
    inproc: list[float] = field(default_factory=list)  # the report's "seconds" (no start-up)
    rss_mb: list[float] = field(default_factory=list)
    #: CPU seconds used by other processes during each timed run (anything but our child).
    foreign: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def mb(self) -> float:
        return self.nbytes / 1e6

    @property
    def ratio(self) -> float:
        return _median(self.kiosk) / _median(self.baseline)

    def us_per_instance(self, inproc: bool = True) -> float:
        return _median(self.inproc if inproc else self.kiosk) / self.files * 1e6


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- sources ----------------------------------------------------------------------------------

def ensure_tree(tree: Tree, workdir: Path, *, regen: bool) -> Path:
    """Generate ``tree`` unless a complete copy is cached; return its path."""
    from kiosk.sample_disc import write_study

    dest = tree.path(workdir)
    marker = dest.with_name(dest.name + ".ok")
    want = {"instances": tree.instances, "rows": tree.rows, "columns": tree.rows,
            "seed": tree.seed}
    if not regen and marker.exists() and dest.is_dir():
        try:
            if json.loads(marker.read_text()) == want:
                return dest
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    print(f"generating {dest} ({tree.instances} × {tree.rows}×{tree.rows}) ...",
          file=sys.stderr, flush=True)
    t0 = time.monotonic()
    write_study(dest, instances=tree.instances, rows=tree.rows, columns=tree.rows,
                seed=tree.seed, patient_id=f"BENCH-{tree.name.upper()}")
    marker.write_text(json.dumps(want))
    print(f"  done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    return dest


def tree_size(src: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(src):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size


def warm(src: Path) -> None:
    """Read every file once so the source is page-cached for both contenders."""
    for dirpath, _dirs, names in os.walk(src):
        for n in names:
            with open(os.path.join(dirpath, n), "rb", buffering=0) as fh:
                while fh.readinto(_READ_BUF):
                    pass


def settle(out: Path, src: Path, seconds: float) -> None:
    """Delete the previous output, re-warm the source, flush, and let the disk go idle."""
    shutil.rmtree(out, ignore_errors=True)
    warm(src)
    subprocess.run(["sync"], check=True)
    time.sleep(seconds)


_TICK = os.sysconf("SC_CLK_TCK")


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not iowait) since boot."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(f[:8]) - f[3] - f[4]) / _TICK  # user..steal minus idle and iowait


def run_child(cmd: list[str], **kw: object) -> tuple[float, int, float, float]:
    """Run ``cmd``: (wall s, exit code, peak RSS MB, CPU s used by *other* processes meanwhile).

    ``wait4`` gives this child's own rusage (its reaped children included), so peak RSS is the
    import process's, not this script's.
    """
    busy0 = busy_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    foreign = busy_cpu() - busy0 - usage.ru_utime - usage.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss * 1024 / 1e6, max(foreign, 0.0)  # KiB


# --- contenders -------------------------------------------------------------------------------

def run_baseline(src: Path, out: Path) -> tuple[float, float]:
    """``cp -r SRC OUT && sync``: (wall s, foreign CPU s)."""
    wall, code, _rss, foreign = run_child(
        ["sh", "-c", 'cp -r "$1" "$2" && sync', "sh", str(src), str(out)])
    if code != 0:
        raise SystemExit(f"baseline cp -r {src} {out} && sync failed ({code})")
    return wall, foreign


def run_kiosk(src: Path, out: Path, config: Path,
              log: Path) -> tuple[float, float, float, dict, str]:
    """Import ``src`` into a fresh data dir ``out``.

    Returns (wall s, peak RSS MB, foreign CPU s, report, error).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("KIOSK_DATA_DIR", "KIOSK_CONFIG")}
    cmd = [sys.executable, "-c", _KIOSK, "--data-dir", str(out), "--config", str(config),
           "import", str(src), "--json"]
    report_file = log.with_suffix(".json")
    with open(report_file, "wb") as stdout, open(log, "wb") as stderr:
        wall, code, rss_mb, foreign = run_child(cmd, stdout=stdout, stderr=stderr, env=env)
    error = ""
    try:
        report = json.loads(report_file.read_text())
    except ValueError:
        report = {}
    if code != 0 or not report:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        error = f"kiosk import exited {code}: {' | '.join(tail)}"
    return wall, rss_mb, foreign, report, error


def measure(tree: Tree, src: Path, workdir: Path, repeat: int, settle_s: float,
            config: Path) -> Result:
    res = Result(tree)
    res.files, res.nbytes = tree_size(src)
    out = workdir / "out" / tree.label
    out.parent.mkdir(parents=True, exist_ok=True)
    for i in range(repeat):
        settle(out, src, settle_s)
        base, foreign = run_baseline(src, out)
        res.baseline.append(base)
        res.foreign.append(foreign / max(base, 1.0))  # /proc/stat ticks are 10 ms
        settle(out, src, settle_s)
        wall, rss, foreign, report, error = run_kiosk(src, out, config,
                                                      workdir / f"{tree.label}.log")
        res.foreign.append(foreign / max(wall, 1.0))
        res.kiosk.append(wall)
        res.rss_mb.append(rss)
        res.inproc.append(float(report.get("seconds", wall)))
        inst = report.get("instances", {})
        if not error and (inst.get("found") != res.files or inst.get("verified") != res.files):
            error = f"imported {inst.get('found')} / verified {inst.get('verified')} of " \
                    f"{res.files} files"
        if error:
            res.errors.append(error)
        print(f"  {tree.label} run {i + 1}/{repeat}: cp+sync {base:.2f} s, "
              f"kiosk {wall:.2f} s (import {res.inproc[-1]:.2f} s), {rss:.0f} MB, other "
              f"processes {res.foreign[-2]:.0%}/{res.foreign[-1]:.0%} of a core"
              + (f"  ERROR {error}" if error else ""), file=sys.stderr, flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return res


# --- report -----------------------------------------------------------------------------------

HEADER = (f"{'tree':<14} {'files':>6} {'MB':>7} {'baseline s':>10} {'kiosk s':>8} "
          f"{'import s':>8} {'ratio':>6} {'MB/s':>6} {'peak RSS MB':>11} {'µs/inst*':>8}")


def print_table(results: list[Result]) -> None:
    print(HEADER)
    print("-" * len(HEADER))
    for r in results:
        print(f"{r.tree.label:<14} {r.files:>6} {r.mb:>7.1f} {_median(r.baseline):>10.2f} "
              f"{_median(r.kiosk):>8.2f} {_median(r.inproc):>8.2f} {r.ratio:>6.2f} "
              f"{r.mb / _median(r.kiosk):>6.0f} {max(r.rss_mb):>11.0f} "
              f"{r.us_per_instance():>8.0f}")
    print("Medians. baseline = `cp -r SRC DST && sync`; kiosk = wall time of a `kiosk import "
          "--json` subprocess\n(interpreter start-up, ingest, syncfs, verify re-hash, database); "
          "import s = the report's own 'seconds'\n(start-up excluded); ratio and MB/s use kiosk s; "
          "*µs/inst uses import s.")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_targets(results: list[Result], quick: bool) -> None:
    print()
    print("Targets" + ("  (--quick: sizes far below the reference, indicative only)"
                       if quick else ""))
    for big in (r for r in results if r.tree.name == "big"):
        ratio = big.ratio
        print(f"  {verdict(ratio <= TARGET_RATIO)}  ratio kiosk/baseline ({big.tree.label}, "
              f"{big.mb:.0f} MB): {ratio:.2f}x  (target <= {TARGET_RATIO})")
    peak = max(max(r.rss_mb) for r in results)
    print(f"  {verdict(peak < TARGET_RSS_MB)}  peak RSS of the import: {peak:.0f} MB  "
          f"(target < {TARGET_RSS_MB:.0f} MB)")
    small = [r for r in results if r.tree.name == "small"]
    if len(small) == 2:
        few, many = small
        u_few, u_many = few.us_per_instance(), many.us_per_instance()
        flat = u_many / u_few
        print(f"  {verdict(flat <= TARGET_FLAT)}  per-instance cost {few.files} -> {many.files} "
              f"small instances: {u_few:.0f} -> {u_many:.0f} µs/instance, x{flat:.2f}  "
              f"(target flat, <= x{TARGET_FLAT}; import s, start-up excluded)")
        w_few, w_many = few.us_per_instance(inproc=False), many.us_per_instance(inproc=False)
        print(f"        (wall incl. interpreter start-up: {w_few:.0f} -> {w_many:.0f} "
              "µs/instance)")
    failed = [e for r in results for e in r.errors]
    if failed:
        print(f"  FAIL  {len(failed)} import run(s) did not import and verify every file; "
              f"first: {failed[0]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp/kiosk-bench"),
                   help="cache for the generated trees and scratch output (default %(default)s)")
    p.add_argument("--big", type=int, help="instances of 512×512 (default 2000; --quick 100)")
    p.add_argument("--small", type=int,
                   help="instances of 64×64; a tree of a tenth is measured too "
                        "(default 10000; --quick 500)")
    p.add_argument("--repeat", type=int, help="runs per contender (default 3; --quick 1)")
    p.add_argument("--settle", type=float,
                   help="idle seconds after sync before each run (default 2; --quick 0.2)")
    p.add_argument("--quick", action="store_true", help="small smoke-run sizes")
    p.add_argument("--regen", action="store_true", help="regenerate the cached trees")
    p.add_argument("--config", type=Path,
                   help="kiosk TOML configuration for the import (default: built-in defaults, "
                        "never /etc's), e.g. to compare [import] workers")
    p.add_argument("--only", choices=["big", "small"], help="measure one kind of tree only")
    a = p.parse_args(argv)
    big_n = a.big or (100 if a.quick else 2000)
    small_n = a.small or (500 if a.quick else 10000)
    repeat = a.repeat or (1 if a.quick else 3)
    settle_s = a.settle if a.settle is not None else (0.2 if a.quick else 2.0)
    workdir: Path = a.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    config: Path = a.config.resolve() if a.config else workdir / "defaults.toml"
    if not a.config:
        config.write_text("# bench/ingest.py: the kiosk's built-in defaults\n")
    trees = [Tree("big", big_n, 512, 1), Tree("small", max(1, small_n // 10), 64, 3),
             Tree("small", small_n, 64, 2)]
    trees = [t for t in trees if a.only in (None, t.name)]
    srcs = [ensure_tree(t, workdir, regen=a.regen) for t in trees]
    results = []
    for tree, src in zip(trees, srcs, strict=True):
        print(f"measuring {src} ...", file=sys.stderr, flush=True)
        results.append(measure(tree, src, workdir, repeat, settle_s, config))

    print()
    print(f"kiosk import benchmark: {os.cpu_count()} cores, workdir {workdir}, config "
          f"{a.config or 'defaults'} ({'quick, ' if a.quick else ''}{repeat} run(s) each)")
    print_table(results)
    foreign = max(max(r.foreign) for r in results)
    if foreign > FOREIGN_WARN:
        print(f"WARNING: other processes used up to {foreign:.0%} of a core during a timed run "
              "(kernel writeback included): figures are disturbed; rerun on a quiet machine.")
    print_targets(results, a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
