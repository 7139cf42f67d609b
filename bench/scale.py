"""Does the kiosk cost the same on day 300 as on day 1? (issue 18; DESIGN.md §6 "Scale")

Two kiosks side by side: the *reference* one holds one case; the *big* one is filled through
the service (``import_path`` of a distinct small medium per case, each synced to a fake office
cloud, so every case has its upload history) up to each size N. At each N the same small
operations run on both, interleaved in pairs (reference, big, reference, big, ...), and each is
reported as the median of the per-pair ratios big / reference, with their spread and the CPU
seconds (user + sys):

* import of a small medium (3 images; the new case is purged again so N stays N)
* ``kiosk cases --json`` (a child process; its peak RSS too)
* open a case (detail, reports, report states, upload state: what the Case screen reads)
* export of a small case (encrypted, read back)
* pick the next outbox job (one pending among N cases' finished uploads)
* append an audit entry
* retention sweep (review every case; none due)
* ``kiosk`` start-up (a child building the service and recovering; its peak RSS)
* the desk's Home list on screen (Textual pilot, from app start), and finding the oldest case
  by typing ``-`` and the four characters after it in its number. At case 1 Home draws one
  row, with N cases a full page (20): so Home is also paired with a third kiosk holding one
  page of cases, which separates "a fuller screen" from "a longer history"

Every run starts with a full garbage collection (untimed), so none pays for the garbage of the
run before it.

Then ``kiosk audit verify`` over an audit trail of ``--audit`` entries (100,000: the chain is
written with the trail's own hashing, untimed), and the data directory's size at each N.

    .venv/bin/python bench/scale.py                 # N = 1, 100, 1000, 3000 (~15 min)
    .venv/bin/python bench/scale.py --quick         # N <= 300 (CI's bench smoke test)
    .venv/bin/python bench/scale.py --sizes 1,500 --pairs 7
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import kiosk_cmd, kiosk_env, median, run_child, say, verdict, warm_bytecode

TARGET_RATIO = 1.3
TARGET_CASES_JSON = 0.5
TARGET_HOME = 0.3
TARGET_AUDIT = 5.0
TARGET_RSS = 0.10


@dataclasses.dataclass
class Sample:
    """One timed run: wall seconds, CPU seconds, peak RSS in MB (children only)."""

    wall: float
    cpu: float
    rss: float | None = None


def timed(fn: Callable[[], object]) -> Sample:
    """Time ``fn`` in this process (CPU: this process's user + sys, all threads)."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return Sample(time.perf_counter() - t0, time.process_time() - c0)


class Kiosk:
    """One kiosk data directory, its service, a fake office cloud and a source of media."""

    def __init__(self, root: Path, name: str) -> None:
        from kiosk.bootstrap import build_service, build_syncer
        from kiosk.cloud.fake import FakeCloud

        self.root = root / name
        self.data = self.root / "data"
        self.media = self.root / "media"
        self.config = self.root / "kiosk.toml"
        self.root.mkdir(parents=True)
        self.config.write_text("[retention]\ndays = 30\n", encoding="utf-8")
        env = {"KIOSK_LINK_BASE_URL": "https://office.example"}
        self.service = build_service(self.config, self.data, env=env)
        s = self.service
        s._syncer = build_syncer(s.config, s.locations, s.catalog, s.store, s.audit,
                                 FakeCloud())
        s.set_pin("24680", source="bench")  # a kiosk without one starts on the PIN setup
        self.seed = {"reference": 0, "page": 500_000}.get(name, 1_000_000)
        self.first: str | None = None

    def medium(self) -> Path:
        """A fresh small medium (3 images, a patient and study of its own)."""
        from kiosk.samples.bulk import write_study

        self.seed += 1
        path = self.media / f"m{self.seed}"
        shutil.rmtree(path, ignore_errors=True)
        write_study(path, instances=3, rows=16, columns=16, seed=self.seed,
                    patient_id=f"P{self.seed}", patient_name=f"PATIENT^NUMBER{self.seed}")
        return path

    def add_cases(self, n: int) -> None:
        """Import ``n`` cases (distinct media) through the service and sync them."""
        for i in range(n):
            medium = self.medium()
            case = self.service.import_path(medium)["case_id"]
            shutil.rmtree(medium)
            self.first = self.first or case
            if i % 200 == 199:
                self.service.sync_once()
        self.service.sync_once()
        if self.first is not None:  # delivered, so retention has something to weigh
            stick = self.root / "stick"
            if not self.service.catalog.case(self.first).get("delivered"):  # type: ignore[union-attr]
                stick.mkdir(exist_ok=True)
                self.service.export_case(self.first, stick)
                shutil.rmtree(stick)

    def cases(self) -> int:
        """How many cases the kiosk holds."""
        return self.service.count_cases()

    # --- the operations -------------------------------------------------------------------

    def op_import(self) -> Sample:
        medium = self.medium()
        report: dict[str, Any] = {}
        sample = timed(lambda: report.update(self.service.import_path(medium)))
        shutil.rmtree(medium)
        self.service.purge_case(report["case_id"], force=True, reason="bench")
        return sample

    def op_cases_json(self) -> Sample:
        child = run_child(kiosk_cmd("--config", self.config, "--data-dir", self.data,
                                    "cases", "--json"), env=kiosk_env())
        assert child.code == 0, child.stderr[-2000:]
        assert len(json.loads(child.stdout)["cases"]) == self.cases()
        return Sample(child.wall, child.cpu, child.rss_mb)

    def op_open(self) -> Sample:
        assert self.first is not None
        s = self.service

        def open_case() -> None:
            s.case_detail(self.first)  # type: ignore[arg-type]
            s.reports(self.first)  # type: ignore[arg-type]
            s.report_status(self.first)  # type: ignore[arg-type]
            s.upload_state(self.first)  # type: ignore[arg-type]

        return timed(open_case)

    def op_export(self) -> Sample:
        assert self.first is not None
        stick = self.root / "stick"
        stick.mkdir(exist_ok=True)
        sample = timed(lambda: self.service.export_case(self.first, stick))  # type: ignore[arg-type]
        shutil.rmtree(stick)
        return sample

    def op_next_job(self) -> Sample:
        syncer = self.service.syncer
        assert self.first is not None
        job_id = syncer.outbox.enqueue_upload(destination=syncer.destination,
                                              case_id=self.first, study_uid="bench",
                                              items=[], fingerprint="bench")
        claimed: dict[str, Any] = {}
        sample = timed(lambda: claimed.update(syncer.outbox.claim_next(syncer.destination)
                                              or {}))
        assert claimed.get("job_id") == job_id, claimed
        syncer.outbox.finish(job_id, "done")
        return sample

    def op_audit(self) -> Sample:
        return timed(lambda: self.service.audit.append("bench", note="scale"))

    def op_retention(self) -> Sample:
        due: list[Any] = []
        sample = timed(lambda: due.extend(self.service.run_retention()))
        assert not due
        return sample

    def op_startup(self) -> Sample:
        code = ("import sys\nfrom kiosk.bootstrap import build_service\n"
                "build_service(sys.argv[1], sys.argv[2])")
        child = run_child([sys.executable, "-c", code, str(self.config), str(self.data)],
                          env=kiosk_env())
        assert child.code == 0, child.stderr[-2000:]
        return Sample(child.wall, child.cpu, child.rss_mb)

    def op_home(self) -> tuple[Sample, Sample]:
        """The Home list on screen, then the oldest case found by typing."""
        return asyncio.run(self._home())

    async def _home(self) -> tuple[Sample, Sample]:
        from kiosk_tui.app import make_app
        from kiosk_tui.home import HomeScreen

        assert self.first is not None
        app = make_app(self.service, start_sync=False, start_retention=False)
        c0, t0 = time.process_time(), time.perf_counter()
        async with app.run_test(size=(100, 40)) as pilot:
            home = await _until(pilot, lambda: isinstance(app.screen, HomeScreen)
                                and app.screen.cases and app.screen)
            shown = Sample(time.perf_counter() - t0, time.process_time() - c0)
            assert isinstance(home, HomeScreen)
            c1, t1 = time.process_time(), time.perf_counter()
            # "-" and the four characters after it: as much as a coordinator types of a number.
            await pilot.press("slash", "minus", *self.first[-4:].lower())
            await _until(pilot, lambda: self.first in [c["case_id"] for c in home.cases])
            found = Sample(time.perf_counter() - t1, time.process_time() - c1)
        return shown, found


async def _until(pilot: Any, what: Callable[[], Any], timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        await pilot.pause(0.005)
    raise TimeoutError(f"the desk did not get there (on {pilot.app.screen!r})")


OPS = [("import of a small medium", "op_import"), ("kiosk cases --json", "op_cases_json"),
       ("open a case", "op_open"), ("export a small case", "op_export"),
       ("pick the next outbox job", "op_next_job"), ("append an audit entry", "op_audit"),
       ("retention sweep", "op_retention"), ("kiosk start-up", "op_startup")]
HOME = ("Home list on screen", "find a case by typing")
#: One Home page (kiosk_tui.home.PAGE): the third kiosk's size.
PAGE_CASES = 20
HOME_PAGE = f"Home list, vs {PAGE_CASES} cases"


def measure(ref: Kiosk, big: Kiosk, pairs: int,
            page: Kiosk | None = None) -> dict[str, list[tuple[Sample, Sample]]]:
    """``pairs`` interleaved (reference, big) samples of every operation (and Home against a
    kiosk with one full page of cases, when ``page`` is given)."""
    out: dict[str, list[tuple[Sample, Sample]]] = {label: [] for label, _ in OPS}
    out |= {label: [] for label in HOME}
    if page is not None:
        out[HOME_PAGE] = []
    def run(kiosk: Kiosk, op: str) -> Any:
        # A full collection left over from the previous operation's garbage (~0.1 s in this
        # process, which holds two kiosks and Textual) would land on whichever run comes
        # next; each run starts collected, so it pays only for its own allocations.
        gc.collect()
        return getattr(kiosk, op)()

    for _ in range(pairs):
        for label, op in OPS:
            a = run(ref, op)
            b = run(big, op)
            out[label].append((a, b))
        (ra, rf), (ba, bf) = run(ref, "op_home"), run(big, "op_home")
        out[HOME[0]].append((ra, ba))
        out[HOME[1]].append((rf, bf))
        if page is not None:
            (pa, _pf), (ba, _bf) = run(page, "op_home"), run(big, "op_home")
            out[HOME_PAGE].append((pa, ba))
    return out


def dir_mb(path: Path) -> float:
    """Bytes under ``path``, in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def audit_verify(work: Path, entries: int) -> tuple[float, float, float, int]:
    """Write a chained trail of ``entries`` (untimed) and time ``kiosk audit verify``."""
    from kiosk.security.audit import GENESIS, entry_hash

    data = work / "audit-kiosk"
    data.mkdir()
    prev = GENESIS
    with open(data / "audit.jsonl", "wb") as fh:
        for seq in range(1, entries + 1):
            entry = {"seq": seq, "time": "2026-12-07T12:00:00Z", "kiosk": "bench",
                     "action": "export", "details": {"case_id": f"C{seq:08d}", "files": 3},
                     "prev": prev}
            entry["hash"] = prev = entry_hash(entry)
            fh.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
    config = work / "audit.toml"
    config.write_text("", encoding="utf-8")
    child = run_child(kiosk_cmd("--config", config, "--data-dir", data, "audit", "verify"),
                      env=kiosk_env())
    assert child.code == 0, child.stderr[-2000:]
    return child.wall, child.cpu, child.rss_mb, entries


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 30, 150 and 3 pairs")
    parser.add_argument("--sizes", help="comma-separated case counts (default 1,100,1000,3000)")
    parser.add_argument("--pairs", type=int, help="interleaved pairs per operation (default 5)")
    parser.add_argument("--audit", type=int, help="audit entries to verify (default 100000)")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.sizes or ("1,30,150" if args.quick
                                             else "1,100,1000,3000")).split(",")]
    if args.quick and max(sizes) > 300:
        parser.error("--quick stays at or below 300 cases")
    pairs = args.pairs or (3 if args.quick else 5)
    entries = args.audit or (5000 if args.quick else 100_000)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    os.environ.pop("KIOSK_DATA_DIR", None)
    warm_bytecode("kiosk.cli.main", "kiosk.bootstrap")
    try:
        ref, big = Kiosk(work, "reference"), Kiosk(work, "big")
        ref.add_cases(1)
        page = Kiosk(work, "page")
        page.add_cases(PAGE_CASES)
        print(f"scale benchmark: reference kiosk with 1 case vs a kiosk with N cases; {pairs} "
              "interleaved pairs per operation; ratio = median of per-pair ratios N / case-1 "
              "[min-max]; CPU = user+sys seconds (median)")
        print(f"{'operation':<28} {'N':>5} {'case-1 s':>9} {'N s':>9} {'ratio':>7} "
              f"{'spread':>13} {'CPU 1':>7} {'CPU N':>7} {'RSS MB 1/N':>12}")
        ratios: dict[str, dict[int, float]] = {}
        absolute: dict[str, dict[int, float]] = {}
        rss: dict[str, dict[int, float]] = {}
        sizes_mb: dict[int, float] = {}
        for n in sizes:
            big.add_cases(n - big.cases())
            say(f"measuring at {big.cases()} cases")
            for label, runs in measure(ref, big, pairs, page).items():
                per_pair = [b.wall / a.wall for a, b in runs if a.wall > 0]
                ratio = statistics.median(per_pair)
                ratios.setdefault(label, {})[n] = ratio
                absolute.setdefault(label, {})[n] = median(b.wall for _a, b in runs)
                rss_text = ""
                if runs[0][1].rss is not None:
                    rss.setdefault(label, {})[n] = median(b.rss or 0 for _a, b in runs)
                    rss_text = (f"{median(a.rss or 0 for a, _b in runs):.0f}/"
                                f"{rss[label][n]:.0f}")
                print(f"{label:<28} {n:>5} {median(a.wall for a, _b in runs):>9.4f} "
                      f"{absolute[label][n]:>9.4f} {ratio:>6.2f}x "
                      f"[{min(per_pair):.2f}-{max(per_pair):.2f}]".ljust(84)
                      + f"{median(a.cpu for a, _b in runs):>7.3f} "
                        f"{median(b.cpu for _a, b in runs):>7.3f} {rss_text:>12}", flush=True)
            sizes_mb[n] = dir_mb(big.data)
            print(f"data directory at N={n}: {sizes_mb[n]:.1f} MB "
                  f"({sizes_mb[n] / max(n, 1) * 1000:.0f} kB per case)", flush=True)
        wall, cpu, audit_rss, count = audit_verify(work, entries)
        print(f"kiosk audit verify over {count} entries: {wall:.2f} s, CPU {cpu:.2f} s, "
              f"peak RSS {audit_rss:.0f} MB")
        top = sizes[-1]
        print(f"targets at N={top}:")
        for label in ratios:
            if label == HOME_PAGE and top < PAGE_CASES:
                continue
            r = ratios[label][top]
            print(f"  {verdict(r <= TARGET_RATIO)}  {label}: {r:.2f}x (target <= {TARGET_RATIO}x)")
        cj = absolute["kiosk cases --json"][top]
        print(f"  {verdict(cj < TARGET_CASES_JSON)}  kiosk cases --json: {cj:.3f} s "
              f"(target < {TARGET_CASES_JSON} s)")
        home = absolute[HOME[0]][top]
        print(f"  {verdict(home < TARGET_HOME)}  Home list on screen: {home:.3f} s after start-up "
              f"(target < {TARGET_HOME} s)")
        print(f"  {verdict(wall < TARGET_AUDIT)}  kiosk audit verify ({count} entries): "
              f"{wall:.2f} s (target < {TARGET_AUDIT} s)")
        for label, by_n in rss.items():
            first, last = by_n[sizes[0]], by_n[top]
            change = (last - first) / first if first else 0.0
            print(f"  {verdict(abs(change) <= TARGET_RSS)}  peak RSS of {label}: "
                  f"{first:.0f} MB at N={sizes[0]}, {last:.0f} MB at N={top} ({change:+.0%}; "
                  f"target within +-{TARGET_RSS:.0%})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
