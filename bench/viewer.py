"""Viewer benchmark: OPEN_IMAGES.html opening a real package in Chromium, against ``7z t``.

Usage::

    python bench/viewer.py [--workdir DIR] [--instances N] [--pairs N] [--quick]

The package is the kiosk's own export (AES-256 zip) of ``bench/ingest.py``'s big tree
(``--instances`` × 512×512×16-bit CT; 2,000 ≈ 1 GiB), imported and exported once into
``WORKDIR/viewer/`` and cached. Debian's chromium (``/usr/bin/chromium``, through Playwright's
``executable_path``, headless, every request but the page's blocked) opens ``OPEN_IMAGES.html``
from ``file://``. Then ``--pairs`` times, interleaved:

* ``7z t -pPASS IMAGES.zip``: 7-Zip decrypting and checking every entry (AES-NI; page cache),
  the plain baseline, timed with its CPU seconds;
* the page, in a fresh tab: the archive picked, the passphrase typed, Enter. Timed: until the
  first image is on the viewport's canvas (``first image``), and until the background check
  (every entry decrypted in the page's workers, its HMAC and SHA-256 checked against the signed
  manifest) says ``verified`` (``check``). Chromium's CPU seconds (all its processes, from
  /proc), the renderer's peak RSS and the tab's JS heap (CDP ``Performance.getMetrics``).

Both read the archive from the page cache (it is read once before each pair). Printed: each
pair, then medians, the spread (min–max) and the median of the per-pair ratios of the page's
check throughput to 7z's. Targets (issue 16): first image ≤ 3 s after the passphrase, check ≥
100 MB/s, page ≤ 3,000,000 bytes; PASS/MISS. Exits 0 unless the page fails to open or verify.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import (
    default_config,
    find_7z,
    kiosk_cmd,
    kiosk_env,
    median,
    run_child,
    say,
    verdict,
    warm,
)
from export import ensure_case
from ingest import Tree, ensure_tree

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]
TARGET_FIRST_S = 3.0
TARGET_CHECK_MBPS = 100.0
TARGET_PAGE_BYTES = 3_000_000
_TICK = os.sysconf("SC_CLK_TCK")


def ensure_package(data: Path, case_id: str, base: Path, config: Path) -> tuple[Path, str]:
    """The case's encrypted package, exported once: (its folder, passphrase)."""
    marker = base / "package.json"
    if marker.exists():
        got = json.loads(marker.read_text())
        if Path(got["folder"]).is_dir() and got.get("data") == str(data):
            return Path(got["folder"]), str(got["passphrase"])
    stick = base / "stick"
    if stick.exists():
        shutil.rmtree(stick)
    stick.mkdir(parents=True)
    say(f"exporting case {case_id} to {stick} (once) ...")
    child = run_child(kiosk_cmd("--data-dir", data, "--config", config, "export", case_id,
                                "--to", stick, "--json"), env=kiosk_env()).check()
    report = json.loads(child.stdout)
    marker.write_text(json.dumps({"folder": report["folder"], "passphrase": report["passphrase"],
                                  "data": str(data)}))
    return Path(report["folder"]), str(report["passphrase"])


def _chromium_pids() -> list[int]:
    """Chromium processes started by this run (descendants of this process): other tests on
    the machine may run their own chromium, which must not count."""
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    head, rest = fh.read().rsplit(")", 1)
                parent[int(entry)] = int(rest.split()[1])
                comm[int(entry)] = head.split("(", 1)[1]
            except (OSError, IndexError, ValueError):
                pass
    me = os.getpid()

    def ours(pid: int) -> bool:
        for _ in range(64):  # a bounded walk up the tree
            pid = parent.get(pid, 0)
            if pid == me:
                return True
            if pid <= 1:
                return False
        return False

    return [pid for pid, name in comm.items() if "chrom" in name and ours(pid)]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRss:
    """Samples the largest chromium process's RSS (the tab's renderer) every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max([self.peak, *(_rss_mb(p) for p in _chromium_pids())])

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_page(browser: Any, page_path: Path, volumes: list[Path],
             passphrase: str) -> dict[str, float]:
    """One timed open of the package in a fresh tab."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  service_workers="block")
    url = page_path.resolve().as_uri()
    context.route("**/*", lambda r: r.continue_() if r.request.url.split("#")[0] == url
                  else r.abort())
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("() => globalThis.medpassLib?.ui !== undefined")
        page.locator("#archive").set_input_files([str(v) for v in volumes])
        page.locator("#passphrase").fill(passphrase)
        cpu0 = _cpu_seconds(_chromium_pids())
        with PeakRss() as rss:
            t0 = time.perf_counter()
            page.locator("#passphrase").press("Enter")
            page.wait_for_function("() => { const v = medpassLib.ui.app.screen()?.viewport;"
                                   " return v && v.frame !== null && v.canvas.width > 0; }",
                                   timeout=120_000, polling=10)
            first = time.perf_counter() - t0
            summary = page.wait_for_function(
                "() => { const s = medpassLib.ui.app.screen()?.source?.custody?.summary();"
                " return s && (s.state === 'verified' || s.state === 'warning') ? s : null; }",
                timeout=600_000, polling=20).json_value()
            check = time.perf_counter() - t0
        cpu = _cpu_seconds(_chromium_pids()) - cpu0
        if summary["state"] != "verified":
            raise SystemExit(f"the page did not verify the package: {summary['problems'][:5]}")
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {"first": first, "check": check, "bytes": float(summary["bytesChecked"]),
                "files": float(summary["checked"]), "cpu": cpu, "rss": rss.peak,
                "heap": metrics.get("JSHeapUsedSize", 0.0) / 1e6}
    finally:
        context.close()


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``median (min–max)``."""
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/kiosk-bench"),
                    help="cache of the source tree (shared with the other benchmarks), the "
                         "case and its package (default %(default)s)")
    ap.add_argument("--instances", type=int,
                    help="512×512 instances (default 2000 ≈ 1 GiB; --quick 40)")
    ap.add_argument("--pairs", type=int, help="interleaved pairs (default 5; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="small smoke-run sizes")
    a = ap.parse_args(argv)
    instances = a.instances or (40 if a.quick else 2000)
    pairs = a.pairs or (1 if a.quick else 5)
    seven = find_7z()
    if seven is None:
        return 2
    if not Path(CHROMIUM).exists():
        say(f"{CHROMIUM} not found (apt-get install chromium)")
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from kiosk.viewer import OPENER_NAME, built_file

    workdir: Path = a.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = default_config(workdir)
    src = ensure_tree(Tree("big", instances, 512, 1), workdir, regen=False)
    base = workdir / "viewer" / src.name
    data, case_id = ensure_case(src, base, config)
    folder, passphrase = ensure_package(data, case_id, base, config)
    volumes = sorted(folder.glob("IMAGES.zip.*")) or [folder / "IMAGES.zip"]
    archive_bytes = sum(v.stat().st_size for v in volumes)
    # The page as built now (the cached export may hold an older one): every stick gets the
    # same file, so this is what the next export ships.
    page_path = folder / OPENER_NAME
    shutil.copyfile(built_file(OPENER_NAME), page_path)
    page_bytes = page_path.stat().st_size
    print(f"package: {folder} ({len(volumes)} volume(s), {archive_bytes / 1e6:.0f} MB, "
          f"{instances} images); page {page_bytes:,} bytes")

    from playwright.sync_api import sync_playwright

    rows: list[tuple[dict[str, float], float, float]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            run_page(browser, page_path, volumes, passphrase)  # warm-up, not counted
            print(f"{'pair':>4} {'first s':>8} {'check s':>8} {'page MB/s':>10} {'CPU s':>7} "
                  f"{'RSS MB':>7} {'heap MB':>8} {'7z t s':>7} {'7z MB/s':>8} {'7z CPU':>7} "
                  f"{'ratio':>6}")
            for i in range(pairs):
                warm(volumes)
                # Alternate which goes first, so neither always has the warmer machine.
                order = ("page", "7z") if i % 2 == 0 else ("7z", "page")
                got: dict[str, Any] = {}
                for who in order:
                    if who == "page":
                        got["page"] = run_page(browser, page_path, volumes, passphrase)
                    else:
                        child = run_child([seven, "t", f"-p{passphrase}", str(volumes[0])])
                        if child.code != 0:
                            raise SystemExit(f"7z t failed: {child.stdout[-500:]}")
                        got["7z"] = (child.wall, child.cpu)
                p, (sz_wall, sz_cpu) = got["page"], got["7z"]
                mbps = archive_bytes / 1e6 / p["check"]
                seven_mbps = archive_bytes / 1e6 / sz_wall
                rows.append((p, sz_wall, sz_cpu))
                print(f"{i + 1:>4} {p['first']:>8.2f} {p['check']:>8.2f} {mbps:>10.0f} "
                      f"{p['cpu']:>7.2f} {p['rss']:>7.0f} {p['heap']:>8.1f} {sz_wall:>7.2f} "
                      f"{seven_mbps:>8.0f} {sz_cpu:>7.2f} {mbps / seven_mbps:>6.2f}")
        finally:
            browser.close()

    firsts = [p["first"] for p, _, _ in rows]
    checks = [archive_bytes / 1e6 / p["check"] for p, _, _ in rows]
    sevens = [archive_bytes / 1e6 / w for _, w, _ in rows]
    ratios = [c / s for c, s in zip(checks, sevens, strict=True)]
    print(f"first image after the passphrase: {spread(firsts)} s")
    print(f"background check (decrypt + HMAC + SHA-256 of every entry): {spread(checks, '{:.0f}')}"
          f" MB/s; 7z t: {spread(sevens, '{:.0f}')} MB/s")
    print(f"CPU s: page {spread([p['cpu'] for p, _, _ in rows])}, "
          f"7z t {spread([c for _, _, c in rows])}")
    print(f"median of per-pair ratios page check / 7z t: {statistics.median(ratios):.2f}x "
          f"(spread {min(ratios):.2f}–{max(ratios):.2f}, {len(ratios)} pairs)")
    print(f"tab: peak renderer RSS {spread([p['rss'] for p, _, _ in rows], '{:.0f}')} MB, "
          f"JS heap after the check {spread([p['heap'] for p, _, _ in rows], '{:.1f}')} MB")
    print(f"{verdict(median(firsts) <= TARGET_FIRST_S)}  first image ≤ {TARGET_FIRST_S:.0f} s")
    print(f"{verdict(median(checks) >= TARGET_CHECK_MBPS)}  check ≥ {TARGET_CHECK_MBPS:.0f} MB/s")
    print(f"{verdict(page_bytes <= TARGET_PAGE_BYTES)}  page ≤ {TARGET_PAGE_BYTES:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
