"""The outbox's stories on the fake cloud: once and only once, offline, refused, resumed."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.cloud.fake import FakeCloud
from kiosk.cloud.outbox import DONE, FAILED, IN_FLIGHT, PENDING, RETRY, backoff_delay
from kiosk.cloud.protocol import InstanceFailure
from kiosk.cloud.sync import SyncStatus
from kiosk.cloud.sync_loop import SyncLoop
from kiosk.cloud.uploader import SyncProgress
from kiosk.service import KioskService
from tests.conftest import make_instance
from tests.sync_kit import fake_syncer, import_study


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        full = min(60.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 2.0, 60.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 6) for d in delays}) > 40  # jittered, not lock-step


def test_an_imported_study_is_uploaded_once_and_a_second_round_sends_nothing(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    _case_id, _study, sops = import_study(service, tmp_path, instances=6)
    progress: list[SyncProgress] = []
    report = syncer.run_once(progress.append)
    assert report.status.state == "online" and len(report.uploaded) == 1
    assert cloud.sop_uids() == set(sops)
    assert cloud.store_calls == 2  # 6 instances in batches of 4
    assert progress[-1].done == progress[-1].total == 6
    calls = cloud.store_calls
    again = syncer.run_once()
    assert again.uploaded == [] and cloud.store_calls == calls
    assert syncer.outbox.counts(cloud.destination)[DONE] == 1


def test_a_second_disc_of_the_same_study_uploads_only_its_new_images(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    study = "1.2.826.0.1.3680043.8.498.4242"
    for i in range(2):
        make_instance(tmp_path / "disc1" / f"IM{i}", study_uid=study, seed=i)
    case_id = service.import_path(tmp_path / "disc1")["case_id"]
    syncer.run_once()
    for i in range(2, 5):
        make_instance(tmp_path / "disc2" / f"IM{i}", study_uid=study, seed=i)
    service.import_path(tmp_path / "disc2", case_id=case_id)
    syncer.run_once()
    jobs = syncer.outbox.jobs(case_id=case_id)
    assert [j["total"] for j in jobs] == [2, 3] and all(j["state"] == DONE for j in jobs)
    assert len(cloud.sop_uids()) == 5


def test_offline_waits_with_growing_backoff_and_keeps_the_job(service: KioskService,
                                                              tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.online = False
    syncer = fake_syncer(service, cloud, backoff_base_seconds=0.2, backoff_max_seconds=10.0)
    import_study(service, tmp_path, instances=3)
    status = syncer.run_once().status
    assert status.state == "offline" and status.retry_at and not status.online
    assert status.jobs[PENDING] == 1
    first = syncer._state()["retry_at"] - time.time()
    assert 0.05 <= first <= 0.2
    tries = cloud.requests
    syncer.run_once()  # not due yet: the server is not contacted
    assert cloud.requests == tries
    time.sleep(first + 0.01)
    syncer.run_once()
    assert cloud.requests == tries + 1
    st = syncer._state()
    assert st["failures"] == 2 and 0.2 <= st["retry_at"] - time.time() <= 0.4
    cloud.online = True
    time.sleep(st["retry_at"] - time.time() + 0.01)
    assert syncer.run_once().status.state == "online"
    assert syncer.outbox.counts(cloud.destination)[DONE] == 1


def test_a_server_lost_mid_upload_resumes_from_the_cursor(service: KioskService,
                                                          tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    _case, _study, sops = import_study(service, tmp_path, instances=10)

    def drop_after_first_batch(p: SyncProgress) -> None:
        if p.done >= 4:
            cloud.online = False

    assert syncer.run_once(drop_after_first_batch).status.state == "offline"
    [job] = syncer.outbox.jobs()
    assert job["state"] == RETRY and job["cursor"] == 4 and job["next_attempt"] > time.time()
    cloud.online = True
    time.sleep(0.5)
    assert syncer.run_once().status.state == "online"
    [job] = syncer.outbox.jobs()
    assert job["state"] == DONE and cloud.sop_uids() == set(sops)
    assert cloud.store_calls == 1 + 2  # the first batch, then only the 6 left (4 + 2)


def test_a_job_left_in_flight_by_a_dead_process_resumes(service: KioskService,
                                                        tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    import_study(service, tmp_path, instances=5)
    syncer.plan()
    [job] = syncer.outbox.jobs()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    syncer.outbox.save(job["job_id"], state=IN_FLIGHT, owner_pid=int(dead.stdout),
                       owner_boot=syncer.outbox._boot, cursor=4)
    assert syncer.outbox.recover() == [job["job_id"]]
    after = syncer.outbox.job(job["job_id"])
    assert after is not None and after["state"] == PENDING and after["resumed"] == 1
    syncer.run_once()
    assert syncer.outbox.job(job["job_id"])["state"] == DONE  # type: ignore[index]
    assert cloud.store_calls == 1 and len(cloud.sop_uids()) == 1  # only the 5th was left


def test_wrong_credentials_fail_clearly_and_are_not_retried_until_settings_change(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.accept_credentials = False
    syncer = fake_syncer(service, cloud)
    import_study(service, tmp_path, instances=2)
    status = syncer.run_once().status
    assert status.state == "error" and "credentials" in status.message
    [job] = syncer.outbox.jobs()
    assert job["state"] == FAILED and job["error_kind"] == "auth"
    tries = cloud.requests
    for _ in range(3):
        syncer.run_once()
    assert cloud.requests == tries  # refused once: not hammered with the same password
    cloud.accept_credentials = True
    syncer.credentials = "fixed-settings"  # the coordinator changed the password
    assert syncer.run_once().status.state == "online"
    assert syncer.outbox.jobs()[0]["state"] == DONE


def test_an_instance_refused_for_good_fails_the_job_but_not_the_others(
        service: KioskService, tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud)
    _case, _study, sops = import_study(service, tmp_path, instances=6)
    cloud.refuse[sops[2]] = InstanceFailure("SOP class not supported", transient=False)
    report = syncer.run_once()
    [job] = syncer.outbox.jobs()
    assert job["state"] == FAILED and list(job["failures"]) == [sops[2]]
    assert "SOP class not supported" in job["last_error"]
    assert report.failed and cloud.sop_uids() == set(sops) - {sops[2]}


def test_an_instance_refused_for_now_is_resent_then_given_up(service: KioskService,
                                                             tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud, max_attempts=2)
    _case, _study, sops = import_study(service, tmp_path, instances=3)
    cloud.refuse[sops[0]] = InstanceFailure("out of resources", transient=True)
    syncer.run_once()
    [job] = syncer.outbox.jobs()
    assert job["state"] == RETRY and job["failures"][sops[0]]["attempts"] == 1
    time.sleep(0.1)
    syncer.run_once()
    [job] = syncer.outbox.jobs()
    assert job["state"] == FAILED and job["failures"][sops[0]]["attempts"] == 2
    assert cloud.store_calls == 2  # the retry sent only the refused instance
    del cloud.refuse[sops[0]]
    assert syncer.retry_failed() == 1
    syncer.run_once()
    assert syncer.outbox.jobs()[0]["state"] == DONE and cloud.sop_uids() == set(sops)


def test_the_background_loop_uploads_reports_status_and_stops(service: KioskService,
                                                              tmp_path: Path) -> None:
    cloud = FakeCloud()
    syncer = fake_syncer(service, cloud, interval_seconds=30)
    statuses: list[SyncStatus] = []
    loop = SyncLoop(syncer, on_status=statuses.append)
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while not statuses and time.monotonic() < deadline:
            time.sleep(0.01)
        assert statuses and statuses[-1].online
        _case, _study, sops = import_study(service, tmp_path, instances=2)
        loop.wake()  # an import happened: do not wait 30 s
        while cloud.sop_uids() != set(sops) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cloud.sop_uids() == set(sops)
    finally:
        started = time.monotonic()
        loop.stop()
        assert time.monotonic() - started < 2
    assert loop._thread is not None and not loop._thread.is_alive()


def test_a_round_that_raises_does_not_kill_the_loop(service: KioskService) -> None:
    syncer = fake_syncer(service, FakeCloud(), interval_seconds=1)
    calls = []

    def broken(*_a: object, **_k: object) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    syncer.run_once = broken  # type: ignore[method-assign,assignment]
    syncer.seconds_until_next = lambda: 0.01  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=SyncLoop(syncer).run_forever, args=(stop,))
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(2)
    assert len(calls) >= 2 and not thread.is_alive()


@pytest.mark.parametrize("cloud", [None])
def test_without_a_cloud_the_status_is_disabled(service: KioskService, cloud: None) -> None:
    syncer = fake_syncer(service, cloud)
    status = syncer.run_once().status
    assert status.state == "disabled" and not status.online and status.jobs == {}


def test_kiosk_sync_once_without_a_cloud_reads_the_inbox_and_exits_0(
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _err = run_cli("sync", "--once")
    assert code == 0 and "disabled" in out
