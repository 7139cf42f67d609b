"""One contract for the gateway's database on both engines: SQLite (the default) and a real
PostgreSQL. The checks that must hold across processes are raced from many threads, each with
its own store (as separate Orthanc processes would be)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.errors import ConfigError
from kiosk.gateway.share_store import NewShare, ShareStore
from tests.gateway.services import PostgresCluster


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    base: str = request.getfixturevalue("postgres")
    # A fresh schema per test: drop what an earlier test left.
    store = ShareStore(base)
    for table in ("shares", "revoked_tokens", "sessions", "views", "rates"):
        store._run(f"DELETE FROM medpass_{table}")
    store.close()
    return base


def _share(sid: str = "a" * 26, token: str = "t1") -> NewShare:
    return NewShare(id=sid, token=token, token_id=f"jti-{token}", kiosk_id="desk",
                    case_id="C-1", studies=("1.2.3",), expires=4102444800.0,
                    passcode_hash="scrypt$x")


def test_register_get_revoke(url: str) -> None:
    store = ShareStore(url)
    assert store.register(_share(), now=10.0) == "created"
    assert store.register(_share(), now=11.0) == "same"
    assert store.register(_share(token="t2"), now=12.0) == "conflict"
    got = store.get("a" * 26)
    assert got is not None and got.token == "t1" and got.studies == ("1.2.3",)
    assert got.created == 10.0 and got.attempts == 0 and got.revoked is None
    store.add_session("a" * 26, "hash-1", expires=100.0, now=10.0)
    assert store.session_share("hash-1", now=50.0) == "a" * 26
    assert store.session_share("hash-1", now=100.0) is None  # expired
    assert store.revoke("a" * 26, now=20.0) and store.revoke("a" * 26, now=30.0)
    assert store.get("a" * 26).revoked == 20.0  # type: ignore[union-attr]
    assert store.token_revoked("jti-t1") and not store.token_revoked("jti-t2")
    assert store.session_share("hash-1", now=50.0) is None  # revoking ends sessions
    assert not store.revoke("b" * 26)
    store.close()


def test_racing_processes_never_get_more_attempts_than_the_limit(url: str) -> None:
    ShareStore(url).register(_share())
    results: list[int | None] = []
    lock = threading.Lock()

    def guess() -> None:
        store = ShareStore(url)
        for _ in range(3):
            got = store.fail_attempt("a" * 26, 5)
            with lock:
                results.append(got)
        store.close()

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = sorted(r for r in results if r is not None)
    assert counted == [1, 2, 3, 4, 5]
    assert results.count(None) == 24 - 5
    store = ShareStore(url)
    assert store.get("a" * 26).attempts == 5  # type: ignore[union-attr]
    assert store.unlock("a" * 26) and store.get("a" * 26).attempts == 0  # type: ignore[union-attr]


def test_rate_windows_count_every_hit_once(url: str) -> None:
    stores = [ShareStore(url) for _ in range(4)]

    def hit(store: ShareStore) -> None:
        for _ in range(25):
            store.hit("c:x", 60, now=120.5)

    threads = [threading.Thread(target=hit, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].hit("c:x", 60, now=150.0) == 101
    assert stores[0].hit("c:x", 60, now=180.0) == 1  # a new window
    for store in stores:
        store.close()


@pytest.mark.parametrize("bad", ["mysql://x/y", "sqlite:///", "nonsense"])
def test_an_unusable_database_url_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///PATH|postgresql"):
        ShareStore(bad)
