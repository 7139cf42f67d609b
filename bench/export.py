"""Export benchmark: ``kiosk export`` (AES-256 zip, read back from the device) against 7-Zip.

Usage::

    python bench/export.py [--workdir DIR] [--instances N] [--repeat N] [--settle S] [--quick]
                           [--regen] [--no-phases]

The case is ``bench/ingest.py``'s big tree (``--instances`` × 512×512×16-bit CT, 2,000 ≈ 1 GiB,
generated once into ``WORKDIR/src/``), imported once into a cached kiosk data directory
(``WORKDIR/export/<tree>/data``). Its plain package (``kiosk export --no-encryption``) is also
written once (``WORKDIR/export/<tree>/plain``): the very files the encrypted archive holds, laid
out as in the package. Then, ``--repeat`` times and in turn:

* ``7z``: ``7z a -tzip -mem=AES256 -mx=0 -p...`` over those files (page cache only: no fsync, no
  verification; what DESIGN.md §6 measured). The ``sync`` after it is timed apart, for context;
* ``kiosk``: a fresh ``kiosk --data-dir D export CASE --to OUT --json`` process: start-up
  (the entry keys start being derived first), plan, free-space check, the AES-256 zip written
  with ``O_DIRECT`` (each header read as its file is written; DICOMDIR by
  kiosk.package.dicomdir_writer and MANIFEST.JSON last), every 16 MiB fdatasynced, read back from
  the device and compared while the next is written, the last after the final fsync; README,
  ``syncfs`` and its read-back, rename, audit. Children run from compiled bytecode, as an
  installed kiosk does (``benchlib.kiosk_env``);
* ``desk``: the same export as the desk runs it: a child loads the program and builds the
  service (not timed: the desk did that at boot); the stick is ready, so the entry keys start
  (``service.prepare_export``); ``--desk-lead`` seconds later (default 2: the coordinator reads
  the free space and presses Enter) ``service.export_case`` is timed to the end. With
  ``--desk-lead 0`` the keys start with the export.

Before each timed run the previous output is deleted, the kiosk's blobs and the plain package
are read once (both contenders start page-cached), ``sync`` runs and the machine is left alone
for ``--settle`` seconds (DESIGN.md §6). Figures are medians; peak RSS is each child's own
(``bench/benchlib.py``). The last kiosk archive is tested with ``7z t`` and the passphrase
from the JSON report. Then one more kiosk export runs in a child that times its phases
(start-up, imports, plan, zip writing with its header scans / File IDs / DICOMDIR, close,
syncfs, README read-back, bookkeeping); ``--no-phases`` skips it.

Exits 0 unless an export fails or its archive fails ``7z t``; targets print PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import (
    PASSPHRASE,
    TARGET_RSS_MB,
    Runs,
    default_config,
    find_7z,
    kiosk_cmd,
    kiosk_env,
    median,
    run_child,
    say,
    settle,
    seven_test,
    verdict,
    warm_bytecode,
    warn_if_disturbed,
)
from ingest import Tree, ensure_tree

TARGET_RATIO = 1.2  # kiosk export (with read-back) / 7z a (issue 3 item 8)




# --- the case ---------------------------------------------------------------------------------

def _cached(marker: Path, want: dict[str, Any]) -> dict[str, Any] | None:
    """The marker's content when it was written for ``want``."""
    try:
        got = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) and got.get("for") == want else None


def ensure_case(src: Path, base: Path, config: Path) -> tuple[Path, str]:
    """Import ``src`` into the cached data dir ``base/data`` once: (data dir, case id)."""
    data, marker = base / "data", base / "data.ok"
    tree_marker = src.with_name(src.name + ".ok")
    want = {"source": str(src), "tree": tree_marker.read_text(),
            "stamp": tree_marker.stat().st_mtime_ns}
    got = _cached(marker, want)
    if got and data.is_dir():
        return data, str(got["case_id"])
    marker.unlink(missing_ok=True)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    say(f"importing {src} into {data} (once) ...")
    child = run_child(kiosk_cmd("--data-dir", data, "--config", config, "import", src, "--json"),
                      env=kiosk_env()).check()
    report = json.loads(child.stdout)
    inst = report["instances"]
    if not report.get("complete") or inst["verified"] != inst["found"]:
        raise SystemExit(f"the import of {src} did not complete: {inst}")
    marker.write_text(json.dumps({"for": want, "case_id": report["case_id"]}))
    say(f"  case {report['case_id']}, {inst['verified']} instances in {child.wall:.1f} s")
    return data, str(report["case_id"])


def ensure_plain(data: Path, case_id: str, base: Path, config: Path) -> tuple[Path, list[str]]:
    """The case's plain package, written once: (its folder, the files the archive holds)."""
    target, marker = base / "plain", base / "plain.ok"
    got = _cached(marker, {"case_id": case_id})
    if got and Path(got["folder"]).is_dir():
        return Path(got["folder"]), list(got["files"])
    marker.unlink(missing_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    say(f"writing the plain package of {case_id} into {target} (once) ...")
    child = run_child(kiosk_cmd("--data-dir", data, "--config", config, "export", case_id,
                                "--to", target, "--no-encryption", "--json"),
                      env=kiosk_env()).check()
    report = json.loads(child.stdout)
    # README.TXT and the opener page sit beside the archive, not in it: it holds the rest.
    beside = {"README.TXT", "OPEN_IMAGES.html", "LICENSES.TXT"}
    files = [f for f in report["written"] if f not in beside]
    marker.write_text(json.dumps({"for": {"case_id": case_id}, "folder": report["folder"],
                                  "files": files}))
    return Path(report["folder"]), files


# --- phases (in a child) ----------------------------------------------------------------------

class _Clock:
    """Wall and CPU (all threads) seconds, accumulated per phase."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    def timed(self, name: str, fn: Any, *, peak: bool = False) -> Any:
        """``fn`` wrapped: its time is added to ``name`` (and the peak RSS noted after it).

        CPU is the whole process's, except for the "of which" rows, which run on the writer's
        thread while other threads work: theirs is that thread's own.
        """
        cpu_clock = time.thread_time if "of which" in name else time.process_time

        def wrapper(*args: Any, **kw: Any) -> Any:
            t0, c0 = time.perf_counter(), cpu_clock()
            try:
                return fn(*args, **kw)
            finally:
                self.add(name, time.perf_counter() - t0, cpu_clock() - c0)
                if peak:
                    self.peak(f"after {name}")
        return wrapper

    def peak(self, name: str) -> None:
        self.rss_mb[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def phases_child(data: Path, config: Path, case_id: str, out: Path) -> None:
    """One export in this process, timed by phase; print the figures as JSON.

    The phases are the kiosk's own functions, wrapped with a timer (module globals and class
    attributes are looked up at call time, so the wrappers are what the export calls).
    """
    clock = _Clock()
    t0, c0 = time.perf_counter(), time.process_time()
    import kiosk.cli.main  # noqa: F401  what the `kiosk` command loads before it runs
    import kiosk.package.export as exp

    keys = exp.start_keys(True)  # as `kiosk export` does: keys are derived while the rest loads
    import kiosk.package.aeszip as zc
    import kiosk.package.plan as pkg
    from kiosk.bootstrap import build_service
    clock.add(IMPORTS, time.perf_counter() - t0, time.process_time() - c0)

    pkg.plan_package = clock.timed("plan_package", pkg.plan_package, peak=True)
    pkg._scan = clock.timed(EXP_SCAN, pkg._scan)
    pkg._header = clock.timed(EXP_HEADERS, pkg._header)
    pkg.Layout.add = clock.timed(EXP_LAYOUT, pkg.Layout.add)  # type: ignore[method-assign]
    pkg.write_dicomdir = clock.timed(EXP_DICOMDIR, pkg.write_dicomdir)
    exp.export_package = clock.timed("export_package", exp.export_package, peak=True)
    exp._free_bytes = clock.timed(EXP_CHECKS, exp._free_bytes)
    exp._claim_folder = clock.timed(EXP_CHECKS, exp._claim_folder)
    exp._write = clock.timed(EXP_WRITE, exp._write)
    zc.AesZipWriter.close = clock.timed(EXP_CLOSE, zc.AesZipWriter.close)  # type: ignore
    exp.syncfs = clock.timed(EXP_SYNCFS, exp.syncfs)
    exp.read_back_sha256 = clock.timed(EXP_READBACK, exp.read_back_sha256)

    t1, c1 = time.perf_counter(), time.process_time()
    service = build_service(str(config), str(data))
    clock.add("build_service", time.perf_counter() - t1, time.process_time() - c1)
    clock.peak("before the export")
    clock.timed("export_case", service.export_case)(case_id, out, keys=keys)
    print(json.dumps({"wall": clock.wall, "cpu": clock.cpu, "rss_mb": clock.rss_mb,
                      "total": time.perf_counter() - t0}))


IMPORTS = "imports (kiosk.cli.main, export; keys start; bootstrap, package)"
EXP_CHECKS = "export: free space, new folder"
EXP_WRITE = "export: writing the zip, read-back overlapped"
EXP_SCAN = "export:   of which header scans (first 64 KiB, struct)"
EXP_HEADERS = "export:   of which dcmread (headers the scan left)"
EXP_LAYOUT = "export:   of which File IDs (record tree, upper records)"
EXP_DICOMDIR = "export:   of which DICOMDIR encode"
EXP_CLOSE = "export:   of which close (fsync, last segment read back)"
EXP_SYNCFS = "export: README.TXT, syncfs"
EXP_READBACK = "export: read-back from the device of README.TXT (O_DIRECT)"
EXP_REST = "export: rest (rename, fsync dir)"
CASE_REST = "export_case: catalog record, audit, link"
STARTUP = "interpreter start-up and exit"

PHASE_ORDER = [
    STARTUP, IMPORTS, "build_service", "plan_package",
    "export_package", EXP_CHECKS, EXP_WRITE, EXP_SCAN, EXP_HEADERS, EXP_LAYOUT, EXP_DICOMDIR,
    EXP_CLOSE, EXP_SYNCFS, EXP_READBACK, EXP_REST, CASE_REST,
]


def print_phases(result: dict[str, Any], wall: float, cpu: float, rss: float) -> None:
    """The per-phase table of :func:`phases_child`'s figures."""
    w: dict[str, float] = dict(result["wall"])
    c: dict[str, float] = dict(result["cpu"])
    nan = float("nan")
    w[STARTUP], c[STARTUP] = wall - result["total"], nan
    for total, parts, rest in (
        ("export_package", (EXP_CHECKS, EXP_WRITE, EXP_SYNCFS, EXP_READBACK), EXP_REST),
        ("export_case", ("plan_package", "export_package"), CASE_REST),
    ):
        w[rest] = w.get(total, nan) - sum(w.get(k, 0.0) for k in parts)
        c[rest] = c.get(total, nan) - sum(c.get(k, 0.0) for k in parts)
    # README.TXT is written between _write and syncfs: it is in "rest", a few µs.
    print(f"\nWhere the time goes: one more kiosk export, timed in-process ({wall:.2f} s wall, "
          f"{cpu:.2f} s CPU, peak RSS {rss:.0f} MB)")
    head = f"{'phase':62s} {'wall s':>7s} {'CPU s':>7s} {'share':>6s}"
    print(head)
    print("-" * len(head))
    for name in PHASE_ORDER:
        if name not in w:
            continue
        label = ("  " if name.startswith("export: ") else "") + name
        cpu_txt = f"{c[name]:7.2f}" if c[name] == c[name] else f"{'':7s}"
        print(f"{label:62s} {w[name]:7.2f} {cpu_txt} {w[name] / wall:6.0%}")
    print("CPU s counts every thread of the process (key derivation, I/O and read-back threads"
          "\nbeside the writer): CPU > wall means they overlapped. Headers are read while the zip"
          "\nis written (plan_package only reads the catalog); the 'of which' rows are part of the"
          "\nwriting row, their CPU the writer thread's own. The entry keys start before the"
          "\nbootstrap imports, on another core.")
    marks = ", ".join(f"{k} {v:.0f} MB" for k, v in result["rss_mb"].items())
    print(f"Peak RSS (high-water mark): {marks}")


def desk_child(data: Path, config: Path, case_id: str, out: Path, lead: float) -> None:
    """One export as the desk runs it; print its figures as JSON.

    The desk has loaded the program and built the service long before a coordinator presses
    Export, so that part is not timed here. When the patient's stick is ready the desk starts
    the entry keys (``prepare_export``) and shows the stick's free space; the coordinator reads
    it and presses Enter ``lead`` seconds later (0: at once, keys start with the export). Timed
    from Enter: ``export_case`` plans, writes, reads back. CPU is this process's threads plus
    the key-derivation child's (reaped when it ends), lead time included.
    """
    from kiosk.bootstrap import build_service

    service = build_service(str(config), str(data))
    c0, k0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    keys = service.prepare_export(case_id) if lead > 0 else None
    time.sleep(lead)
    t0 = time.perf_counter()
    service.export_case(case_id, out, keys=keys)
    wall = time.perf_counter() - t0
    k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (k1.ru_utime - k0.ru_utime) + (k1.ru_stime - k0.ru_stime)
    print(json.dumps({"seconds": wall, "cpu": cpu}))


# --- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/kiosk-bench"),
                    help="cache of the source tree (shared with bench/ingest.py), the imported "
                         "case and scratch output (default %(default)s)")
    ap.add_argument("--instances", type=int,
                    help="512×512 instances in the case (default 2000 ≈ 1 GiB; --quick 100)")
    ap.add_argument("--repeat", type=int, help="runs per contender (default 3; --quick 1)")
    ap.add_argument("--settle", type=float,
                    help="idle seconds after sync before each run (default 2; --quick 0.2)")
    ap.add_argument("--quick", action="store_true", help="small smoke-run sizes")
    ap.add_argument("--regen", action="store_true", help="regenerate the source tree and case")
    ap.add_argument("--no-phases", action="store_true", help="skip the per-phase timing run")
    ap.add_argument("--desk-lead", type=float, default=2.0,
                    help="seconds between the stick being ready (the desk starts the entry "
                         "keys) and the coordinator's Enter, for the desk's export; 0 = at "
                         "once (default %(default)s)")
    for child in ("--phases-child", "--desk-child"):
        ap.add_argument(child, nargs=4, metavar=("DATA", "CONFIG", "CASE", "OUT"),
                        help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.phases_child:
        data, config, case_id, out = a.phases_child
        phases_child(Path(data), Path(config), case_id, Path(out))
        return 0
    if a.desk_child:
        data, config, case_id, out = a.desk_child
        desk_child(Path(data), Path(config), case_id, Path(out), a.desk_lead)
        return 0
    instances = a.instances or (100 if a.quick else 2000)
    repeat = a.repeat or (1 if a.quick else 3)
    settle_s = a.settle if a.settle is not None else (0.2 if a.quick else 2.0)
    seven = find_7z()
    if seven is None:
        return 2
    workdir: Path = a.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = default_config(workdir)

    tree = Tree("big", instances, 512, 1)  # bench/ingest.py's big tree, same cache
    src = ensure_tree(tree, workdir, regen=a.regen)
    base = workdir / "export" / src.name
    if a.regen:
        shutil.rmtree(base, ignore_errors=True)
    data, case_id = ensure_case(src, base, config)
    plain, files = ensure_plain(data, case_id, base, config)
    nbytes = sum((plain / f).stat().st_size for f in files)
    mb = nbytes / 1e6
    listfile = base / "plain.list"
    listfile.write_text("".join(f + "\n" for f in files))
    sources = [data / "blobs", plain]
    out = base / "out"
    seven_cmd = [seven, "a", "-tzip", "-mem=AES256", "-mx=0", f"-p{PASSPHRASE}", "-bd", "-bso0",
                 "-bsp0", str(out / "7z.zip"), f"@{listfile}"]  # fmt: skip
    export_cmd = kiosk_cmd("--data-dir", data, "--config", config, "export", case_id,
                           "--to", out, "--json")

    # What `kiosk export` loads, compiled once (as installed) before anything is timed.
    warm_bytecode("kiosk.cli.main", "kiosk.bootstrap", "kiosk.package.export", "kiosk.package.plan")
    desk_cmd = [sys.executable, str(Path(__file__).resolve()), "--desk-child", str(data),
                str(config), case_id, str(out), "--desk-lead", str(a.desk_lead)]
    s7 = Runs("7z a -tzip -mem=AES256 -mx=0")
    kz = Runs("kiosk export (process)")
    dk = Runs("kiosk export in the desk")
    failures: list[str] = []
    report: dict[str, Any] = {}
    say(f"measuring: {len(files)} files, {mb:.0f} MB, case {case_id} ...")
    for i in range(repeat):
        settle(out, sources, settle_s, recreate=True)
        run = run_child(seven_cmd, cwd=plain).check()
        t0 = time.perf_counter()
        os.sync()
        s7.add("sync", time.perf_counter() - t0)
        s7.seconds.append(run.wall)
        s7.cpu.append(run.cpu)
        s7.rss_mb.append(run.rss_mb)
        s7.others.append(run.others)
        say(f"  run {i + 1}/{repeat} 7z    {run.wall:6.2f} s (+ sync {s7.extra['sync'][-1]:.2f} s)"
            f"  CPU {run.cpu:5.2f} s  {run.rss_mb:4.0f} MB  others {run.others:.0%} of a core")

        settle(out, sources, settle_s, recreate=True)
        run = run_child(desk_cmd, env=kiosk_env())
        if run.code != 0:
            tail = " | ".join(run.stderr.strip().splitlines()[-3:])
            failures.append(f"the desk's export exited {run.code}: {tail}")
            say(f"  run {i + 1}/{repeat} desk  FAILED: {failures[-1]}")
        else:
            desk = json.loads(run.stdout.strip().splitlines()[-1])
            dk.seconds.append(desk["seconds"])
            dk.cpu.append(desk["cpu"])
            dk.others.append(run.others)
            say(f"  run {i + 1}/{repeat} desk  {desk['seconds']:6.2f} s  CPU {desk['cpu']:5.2f} s")

        # The CLI last: its archive is the one `7z t` checks below.
        settle(out, sources, settle_s, recreate=True)
        run = run_child(export_cmd, env=kiosk_env(), stderr=base / "export.log")
        try:
            report = json.loads(run.stdout)
        except ValueError:
            report = {}
        if run.code != 0 or not report.get("verified") or not report.get("encrypted"):
            tail = " | ".join(run.stderr.strip().splitlines()[-3:])
            failures.append(f"kiosk export exited {run.code}: {tail}")
            say(f"  run {i + 1}/{repeat} kiosk FAILED: {failures[-1]}")
            continue
        kz.seconds.append(run.wall)
        kz.add("report", float(report["seconds"]))
        kz.cpu.append(run.cpu)
        kz.rss_mb.append(run.rss_mb)
        kz.others.append(run.others)
        say(f"  run {i + 1}/{repeat} kiosk {run.wall:6.2f} s (export_package "
            f"{report['seconds']:.2f} s)  CPU {run.cpu:5.2f} s  {run.rss_mb:4.0f} MB  "
            f"others {run.others:.0%} of a core")

    tested: tuple[bool, int | None] | None = None
    if report.get("passphrase"):
        folder = Path(report["folder"])
        volume = next(v for v in sorted(report["written"]) if v.startswith("IMAGES"))
        say(f"7z t {folder / volume} ...")
        tested = seven_test(seven, folder / volume, report["passphrase"])
        if tested[0] and tested[1] not in (None, len(files)):
            tested = (False, tested[1])

    phases: tuple[dict[str, Any], float, float, float] | None = None
    if not a.no_phases and not failures:
        settle(out, sources, settle_s, recreate=True)
        run = run_child([sys.executable, str(Path(__file__).resolve()), "--phases-child",
                         str(data), str(config), case_id, str(out)], env=kiosk_env()).check()
        phases = json.loads(run.stdout.strip().splitlines()[-1]), run.wall, run.cpu, run.rss_mb
    shutil.rmtree(out, ignore_errors=True)

    print(f"\nkiosk export benchmark: {os.cpu_count()} cores, case of {instances} × 512×512 CT, "
          f"{len(files)} files, {mb:.1f} MB in the archive, "
          f"{'quick, ' if a.quick else ''}median of {repeat}")
    head = (f"{'contender':34s} {'seconds':>8s} {'MB/s':>6s} {'CPU s':>6s} {'peak RSS MB':>11s} "
            f"{'vs 7z':>6s}")
    print(head)
    print("-" * len(head))
    t7 = median(s7.seconds)
    sync7 = median(s7.extra["sync"])
    rows = [
        (s7.label, t7, median(s7.cpu), f"{max(s7.rss_mb):.0f}"),
        ("  then sync (not in the ratio)", sync7, float("nan"), ""),
        (kz.label, median(kz.seconds), median(kz.cpu),
         f"{max(kz.rss_mb):.0f}" if kz.rss_mb else ""),
        ("  of which export_package", median(kz.extra.get("report", [])), float("nan"), ""),
        (dk.label, median(dk.seconds), median(dk.cpu), ""),
    ]
    for label, secs, cpu_s, rss_s in rows:
        cpu_txt = f"{cpu_s:6.2f}" if cpu_s == cpu_s else f"{'':6s}"
        print(f"{label:34s} {secs:8.2f} {mb / secs:6.0f} {cpu_txt} {rss_s:>11s} "
              f"{secs / t7:6.2f}")
    print("7z: page cache only (no fsync, no verification). kiosk: the whole `kiosk export --json`"
          "\nprocess: start-up, plan, zip (headers, DICOMDIR) with O_DIRECT + fsync, read back from"
          "\nthe device and compared; export_package = the report's own 'seconds' (no start-up)."
          "\nIn the desk: from the coordinator's Enter to verified, in a process that has loaded"
          "\nthe program; the entry keys started when the stick was ready, "
          f"{a.desk_lead:g} s before\nEnter (--desk-lead; 0 = with the export).")
    if phases:
        print_phases(*phases)

    print("\nTargets" + ("  (--quick: sizes far below the reference, indicative only)"
                         if a.quick else ""))
    if kz.seconds:
        ratio = median(kz.seconds) / t7
        print(f"  {verdict(ratio <= TARGET_RATIO)}  ratio kiosk export / 7z ({mb:.0f} MB): "
              f"{ratio:.2f}x  (target <= {TARGET_RATIO})")
        print(f"        vs 7z + sync: {median(kz.seconds) / (t7 + sync7):.2f}x")
        _run_by_run(kz.seconds, s7.seconds)
    if dk.seconds:
        ratio = median(dk.seconds) / t7
        print(f"  {verdict(ratio <= TARGET_RATIO)}  ratio export in the desk / 7z ({mb:.0f} MB): "
              f"{ratio:.2f}x  (target <= {TARGET_RATIO})")
        _run_by_run(dk.seconds, s7.seconds)
    if kz.seconds:
        rss = max(kz.rss_mb)
        print(f"  {verdict(rss < TARGET_RSS_MB)}  peak RSS of the export: {rss:.0f} MB  "
              f"(target < {TARGET_RSS_MB:.0f} MB)")
    if tested is not None:
        print(f"  {'OK  ' if tested[0] else 'FAIL'}  7z t of the kiosk archive with the report's "
              f"passphrase: {'Everything is Ok' if tested[0] else 'FAILED'}, "
              f"{tested[1]} files (package: {len(files)})")
    for f in failures:
        print(f"  FAIL  {f}")
    warn_if_disturbed([*s7.others, *kz.others, *dk.others])
    return 0 if not failures and tested and tested[0] else 1


def _run_by_run(ours: list[float], sevens: list[float]) -> None:
    """How much the interleaved runs disagree: each run's ratio to the 7z run before it."""
    if len(ours) == len(sevens) > 1:
        pairs = [k / s for k, s in zip(ours, sevens, strict=True)]
        print(f"        run by run: {', '.join(f'{r:.2f}' for r in pairs)} (median "
              f"{median(pairs):.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
