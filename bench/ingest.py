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
otherwise). Peak RSS is the child's own (see ``bench/benchlib.py``).

Always exits 0 (a benchmark, not a test); each target is printed with PASS or MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    TARGET_RSS_MB,
    default_config,
    kiosk_cmd,
    kiosk_env,
    median,
    run_child,
    settle,
    tree_size,
    verdict,
    warn_if_disturbed,
)

# Targets (DESIGN.md §6 and the performance brief).
TARGET_RATIO = 1.5  # kiosk / (cp -r && sync) on the big tree, verification included
TARGET_FLAT = 1.25  # per-instance cost, many small / few small (1.0 = perfectly flat)


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
    #: Cores used by other processes during each timed run (anything but our child).
    foreign: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def mb(self) -> float:
        return self.nbytes / 1e6

    @property
    def ratio(self) -> float:
        return median(self.kiosk) / median(self.baseline)

    def us_per_instance(self, inproc: bool = True) -> float:
        return median(self.inproc if inproc else self.kiosk) / self.files * 1e6


# --- sources ----------------------------------------------------------------------------------

def ensure_tree(tree: Tree, workdir: Path, *, regen: bool) -> Path:
    """Generate ``tree`` unless a complete copy is cached; return its path."""
    from kiosk.samples.bulk import write_study

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


# --- contenders -------------------------------------------------------------------------------

def run_baseline(src: Path, out: Path) -> tuple[float, float]:
    """``cp -r SRC OUT && sync``: (wall s, other processes' cores)."""
    child = run_child(["sh", "-c", 'cp -r "$1" "$2" && sync', "sh", str(src), str(out)])
    if child.code != 0:
        raise SystemExit(f"baseline cp -r {src} {out} && sync failed ({child.code})")
    return child.wall, child.others


def run_kiosk(src: Path, out: Path, config: Path,
              log: Path) -> tuple[float, float, float, dict, str]:
    """Import ``src`` into a fresh data dir ``out``.

    Returns (wall s, peak RSS MB, other processes' cores, report, error).
    """
    cmd = kiosk_cmd("--data-dir", out, "--config", config, "import", src, "--json")
    child = run_child(cmd, env=kiosk_env(), stdout=log.with_suffix(".json"), stderr=log)
    error = ""
    try:
        report = json.loads(child.stdout)
    except ValueError:
        report = {}
    if child.code != 0 or not report:
        tail = child.stderr.strip().splitlines()[-3:]
        error = f"kiosk import exited {child.code}: {' | '.join(tail)}"
    return child.wall, child.rss_mb, child.others, report, error


def measure(tree: Tree, src: Path, workdir: Path, repeat: int, settle_s: float,
            config: Path) -> Result:
    res = Result(tree)
    res.files, res.nbytes = tree_size(src)
    out = workdir / "out" / tree.label
    out.parent.mkdir(parents=True, exist_ok=True)
    for i in range(repeat):
        settle(out, [src], settle_s)
        base, others = run_baseline(src, out)
        res.baseline.append(base)
        res.foreign.append(others)
        settle(out, [src], settle_s)
        wall, rss, others, report, error = run_kiosk(src, out, config,
                                                     workdir / f"{tree.label}.log")
        res.foreign.append(others)
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
        print(f"{r.tree.label:<14} {r.files:>6} {r.mb:>7.1f} {median(r.baseline):>10.2f} "
              f"{median(r.kiosk):>8.2f} {median(r.inproc):>8.2f} {r.ratio:>6.2f} "
              f"{r.mb / median(r.kiosk):>6.0f} {max(r.rss_mb):>11.0f} "
              f"{r.us_per_instance():>8.0f}")
    print("Medians. baseline = `cp -r SRC DST && sync`; kiosk = wall time of a `kiosk import "
          "--json` subprocess\n(interpreter start-up, ingest, syncfs, verify re-hash, database); "
          "import s = the report's own 'seconds'\n(start-up excluded); ratio and MB/s use kiosk s; "
          "*µs/inst uses import s.")


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

    config: Path = a.config.resolve() if a.config else default_config(workdir)
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
    warn_if_disturbed(x for r in results for x in r.foreign)
    print_targets(results, a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
