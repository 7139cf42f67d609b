#!/usr/bin/env python3
"""Phones opening a study through the office gateway (issue 17, item 7), loopback only.

Sets up the office as docs/gateway.md describes: a private PostgreSQL, ``kiosk gateway config
--database``, Orthanc processes started from that file, nginx with TLS in front. A 300-slice
CT (512×512) is stored once; every phone gets its own link to it.

One *phone* does what the phone page does before it can show the first image, then prefetches
the next images of the stack as the page does:

    POST /s/{id}/session → GET /s/{id}/api/share → QIDO studies → series → instances
    → WADO-RS the first instance (time to first image) → WADO-RS the next ``--prefetch``

N phones start at once (threads; 10, 50, 200). Measured per round: p50 and p95 of the time to
first image, requests per second over the round, and the CPU seconds the whole machine spent.

The **plain baseline** in the same run is the same sequence straight to Orthanc's own DICOMweb
(kiosk credentials, through the same nginx, no link, no cookie, no filter): the ratio
gateway/plain is what the gateway's checks cost. Rounds are interleaved, plain then gateway,
``--pairs`` times; the ratio printed is the median of the per-pair ratios, with its spread.
All of that with one Orthanc process behind nginx and with two.

    .venv/bin/python bench/gateway.py                 # 10, 50, 200 phones; 5 pairs
    .venv/bin/python bench/gateway.py --quick         # tiny (CI's bench smoke test)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402
from benchlib import busy_cpu, median, say, verdict  # noqa: E402

from kiosk.samples.bulk import write_study  # noqa: E402
from tests.gateway.gateway_kit import KioskKey, share_id  # noqa: E402
from tests.gateway.real_gateway import GatewayClient, RealGateway  # noqa: E402
from tests.gateway.services import Nginx, PostgresCluster  # noqa: E402

#: Target: the gateway's checks cost at most this much over plain DICOMweb (p50 first image).
TARGET_RATIO = 1.5
#: Target: 50 phones at once see their first image within this (p95, loopback).
TARGET_FIRST_IMAGE = 2.0


@dataclass
class Round:
    """One round of N phones: per-phone first-image seconds, requests, wall and CPU seconds."""

    first: list[float]
    requests: int
    wall: float
    cpu: float
    failures: int

    def p(self, q: float) -> float:
        """The q-th quantile of the first-image times."""
        values = sorted(self.first)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


def _json(answer_body: bytes) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(answer_body or b"[]")


def _uid(item: dict, tag: str) -> str:  # type: ignore[type-arg]
    return str(item[tag]["Value"][0])


def phone_gateway(client: GatewayClient, sid: str, study: str, prefetch: int) -> tuple[float,
                                                                                       int]:
    """One phone through its link: seconds to the first image, requests made."""
    t0 = time.perf_counter()
    session = client.request("POST", f"/s/{sid}/session", b"{}")
    if session.status != 200:
        raise RuntimeError(f"session {session.status}: {session.body[:200]!r}")
    cookie = {"Cookie": session.headers["Set-Cookie"].split(";")[0]}
    base = f"/s/{sid}"
    return _walk(client, base + "/dicom-web", study, prefetch, cookie, t0,
                 first=[f"{base}/api/share"])


def phone_plain(client: GatewayClient, study: str, prefetch: int) -> tuple[float, int]:
    """The same walk straight to Orthanc's DICOMweb with the kiosk's credentials."""
    t0 = time.perf_counter()
    return _walk(client, "/dicom-web", study, prefetch,
                 {"Authorization": client_auth()}, t0, first=["/dicom-web/studies"
                                                              f"?StudyInstanceUID={study}"])


def client_auth() -> str:
    """The kiosk's basic-auth header value."""
    return RealGateway.kiosk_auth()


def _get(client: GatewayClient, path: str, headers: dict[str, str]) -> bytes:
    answer = client.request("GET", path, headers=headers)
    if answer.status != 200:
        raise RuntimeError(f"GET {path.split('?')[0][-60:]}: {answer.status}")
    return answer.body


def _walk(client: GatewayClient, root: str, study: str, prefetch: int,
          headers: dict[str, str], t0: float, first: list[str]) -> tuple[float, int]:
    made = 1 if root.startswith("/s/") else 0  # the session
    for path in first:
        _get(client, path, headers)
        made += 1
    if root.startswith("/s/"):
        _get(client, f"{root}/studies", headers)
        made += 1
    series = _json(_get(client, f"{root}/studies/{study}/series", headers))
    series_uid = _uid(series[0], "0020000E")
    instances = _json(_get(client, f"{root}/studies/{study}/series/{series_uid}/instances",
                           headers))
    made += 2
    instances.sort(key=lambda i: int(i.get("00200013", {}).get("Value", [0])[0]))
    uids = [_uid(i, "00080018") for i in instances]
    _get(client, f"{root}/studies/{study}/series/{series_uid}/instances/{uids[0]}", headers)
    made += 1
    first_image = time.perf_counter() - t0
    for uid in uids[1:1 + prefetch]:
        _get(client, f"{root}/studies/{study}/series/{series_uid}/instances/{uid}", headers)
        made += 1
    return first_image, made


def run_round(phones: int, work: object) -> Round:
    """N phones at once; ``work(n)`` is one phone's walk."""
    barrier = threading.Barrier(phones)
    failures: list[str] = []

    def one(n: int) -> tuple[float, int] | None:
        barrier.wait()
        try:
            return work(n)  # type: ignore[operator,no-any-return]
        except Exception as exc:  # noqa: BLE001 - counted and shown, the round goes on
            failures.append(str(exc))
            return None

    cpu0, t0 = busy_cpu(), time.perf_counter()
    with ThreadPoolExecutor(phones) as pool:
        results = list(pool.map(one, range(phones)))
    wall, cpu = time.perf_counter() - t0, busy_cpu() - cpu0
    done = [r for r in results if r is not None]
    if failures:
        say(f"  {len(failures)} phone(s) failed, e.g. {failures[0]}")
    return Round([r[0] for r in done], sum(r[1] for r in done), wall, cpu, len(failures))


def main() -> int:
    """Set up the office, run the rounds, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", default="10,50,200")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--prefetch", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 and 4 phones, 20 small slices")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.phones, args.pairs, args.slices, args.size, args.prefetch = "2,4", 2, 20, 64, 3
    counts = [int(n) for n in args.phones.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-", dir=args.workdir))

    say(f"office in {work}: PostgreSQL, two Orthanc processes, nginx with TLS")
    database = PostgresCluster(work / "pg")
    database.start()
    key = KioskKey.new("bench-desk")
    started: list[RealGateway] = []
    proxies: list[Nginx] = []
    try:
        first = RealGateway(work / "a", [key], database=database.url, extra=(
            "--limit-client", "1000000", "--limit-share", "1000000",
            "--limit-client-sessions", "1000000"))
        first.start()
        started.append(first)
        second = first.twin("b")
        second.start()
        started.append(second)
        for name, ports in (("one", [first.port]), ("two", [first.port, second.port])):
            proxy = Nginx(work / f"nginx-{name}", ports)
            proxy.start()
            proxies.append(proxy)

        say(f"storing a {args.slices}-slice CT ({args.size}x{args.size})")
        files = write_study(work / "ct", instances=args.slices, rows=args.size,
                            columns=args.size, patient_id="BENCH-PHONE", seed=77)
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        for start in range(0, len(files), 50):
            if first.stow(files[start:start + 50]).status != 200:
                raise RuntimeError("STOW-RS of the benchmark study failed")

        links = sum(counts) * args.pairs * 2  # one fresh link per phone per gateway round
        say(f"registering {links} links")
        ids = []
        for _ in range(links):
            sid = share_id()
            answer = first.kiosk("PUT", f"/kiosk/shares/{sid}",
                                 {"token": key.token([study])})
            if answer.status != 201:
                raise RuntimeError(f"registration: {answer.status} {answer.body[:200]!r}")
            ids.append(sid)

        print(f"phones open a {args.slices}-slice CT ({args.size}x{args.size}); first image "
              f"= session, share, QIDO, series, instances, one WADO-RS instance; then "
              f"{args.prefetch} prefetched")
        print(f"{'procs':>5} {'phones':>6} {'who':>8} {'p50 s':>7} {'p95 s':>7} {'req/s':>7} "
              f"{'CPU s':>6} {'fail':>4}")
        misses = 0
        for proxy, procs in zip(proxies, (1, 2), strict=True):
            client = GatewayClient(proxy.url, proxy.ssl_context())
            for phones in counts:
                # Warm-up round, not counted: connections, Orthanc's caches.
                run_round(phones, lambda n, c=client: phone_plain(c, study, args.prefetch))
                ratios, plains, gateways = [], [], []
                for _ in range(args.pairs):
                    plain = run_round(phones, lambda n, c=client: phone_plain(
                        c, study, args.prefetch))
                    batch = [ids.pop() for _ in range(phones)]
                    gate = run_round(phones, lambda n, b=batch, c=client: phone_gateway(
                        c, b[n], study, args.prefetch))
                    plains.append(plain)
                    gateways.append(gate)
                    if plain.p(0.5) > 0:
                        ratios.append(gate.p(0.5) / plain.p(0.5))
                for who, rounds in (("plain", plains), ("gateway", gateways)):
                    print(f"{procs:>5} {phones:>6} {who:>8} "
                          f"{median(r.p(0.5) for r in rounds):7.3f} "
                          f"{median(r.p(0.95) for r in rounds):7.3f} "
                          f"{median(r.requests / r.wall for r in rounds):7.0f} "
                          f"{median(r.cpu for r in rounds):6.2f} "
                          f"{sum(r.failures for r in rounds):4d}")
                ratio = median(ratios)
                spread = (f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "n/a")
                p95 = median(r.p(0.95) for r in gateways)
                ok = ratio <= TARGET_RATIO and not any(r.failures for r in gateways)
                misses += not ok
                print(f"{verdict(ok)}  ratio gateway/plain p50 first image ({procs} proc, "
                      f"{phones} phones, {len(ratios)} pairs): {ratio:.2f}x "
                      f"(spread {spread}; target <= {TARGET_RATIO})")
                if phones == 50 or (args.quick and phones == counts[-1]):
                    print(f"{verdict(p95 <= TARGET_FIRST_IMAGE)}  p95 first image, {phones} "
                          f"phones at once, {procs} proc: {p95:.3f} s "
                          f"(target <= {TARGET_FIRST_IMAGE} s)")
        say("done")
        return 0 if misses == 0 or args.quick else 1
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in started:
            server.stop()
        database.stop()
        if args.workdir is None:
            import shutil
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
