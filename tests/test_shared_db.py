"""Several runners on one database: SQLite, and a real PostgreSQL server on loopback.

The PostgreSQL server comes from Debian's postgresql package (.ci/run installs it); on a
machine without it these tests skip, in CI they fail.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from pgserver import query
from sqlalchemy.exc import DatabaseError

from benchmark.store import ResultStore, Runner, StoreError, database, leases
from benchmark.studyfile import load_study


@pytest.fixture(scope="session")
def postgres():
    import pgserver

    server = pgserver.require().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite'}"
    return request.getfixturevalue("postgres").url(f"t_{os.getpid()}_{id(request)}")


_rows = query


@pytest.fixture
def stores():
    """ResultStore(url), closed after the test (a pooled connection left open warns)."""
    opened = []

    def open_store(url):
        opened.append(ResultStore(url))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def _synced(url, workdir, open_store):
    loaded = load_study(workdir / "tiny.py", None)
    store = open_store(url)
    s = loaded.study
    store.sync_study(s.name, str(loaded.path), loaded.file_hash, s.description, s.sections,
                     loaded.specs, s.claims)
    return store, sorted({spec.key for spec in loaded.specs})


def test_a_job_is_claimed_by_exactly_one_runner(db_url, workdir, stores):
    store, keys = _synced(db_url, workdir, stores)
    other = stores(db_url)  # a second process's connection
    a, b = Runner("runner-a", "host-a", 1), Runner("runner-b", "host-b", 2)
    got_a = [store.claim(k, a, "v1") for k in keys]
    got_b = [other.claim(k, b, "v1") for k in keys]
    assert all(got_a) and not any(got_b)
    assert store.release(a) == len(keys)
    assert all(other.claim(k, b, "v1") for k in keys)


def test_an_expired_lease_is_reclaimed_a_live_one_is_not(db_url, workdir, stores,
                                                          monkeypatch):
    store, keys = _synced(db_url, workdir, stores)
    remote = Runner("remote", "another-host", 999_999)  # not checkable from here: lease only
    assert store.claim(keys[0], remote, "v1")
    assert store.reclaim() == 0  # lease still valid, and the pid is on another host
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=-1))
    assert store.claim(keys[1], remote, "v1")  # this lease is already expired
    assert store.reclaim() == 1
    states = dict(_rows(db_url, "select job_key, status from jobs"))
    assert states[keys[0]] == "RUNNING" and states[keys[1]] == "PENDING"


def test_two_concurrent_runners_share_one_grid_each_job_once(db_url, workdir):
    """Runner B starts once runner A is training: with four jobs of seconds each and one
    worker each, both must train some of the grid, and no job may run twice."""
    cmd = [sys.executable, "-m", "benchmark", "run", "longer.py", "--jobs", "1", "--db", db_url]

    def start():
        return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    first = start()
    deadline = time.monotonic() + 120
    while not _running(db_url):  # wait for an observable state, not a fixed time
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.05)
    procs = [first, start()]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert _rows(db_url, "select status, count(*) from jobs group by status") == [
        ("COMPLETE", 4)]
    per_job = _rows(db_url, "select job_id, count(*) from runs group by job_id")
    assert len(per_job) == 4 and {n for _, n in per_job} == {1}  # nothing trained twice
    by_runner = _rows(db_url, "select runner, count(*) from runs group by runner")
    assert len(by_runner) == 2 and all(n >= 1 for _, n in by_runner), by_runner
    trained = [int(o.split("finished: ")[1].split()[0]) for o in outputs]
    assert sorted(trained) == sorted(n for _, n in by_runner), outputs


def _running(db_url) -> bool:
    try:
        return bool(_rows(db_url, "select count(*) from jobs where status='RUNNING'")[0][0])
    except Exception:  # the schema is not created yet
        return False


def _hold_write_lock(path, locked: threading.Event, release: threading.Event,
                     seconds: float = 60.0) -> None:
    """Take SQLite's write lock, say so (`locked`), and hold it until `release` is set or
    `seconds` have passed."""
    con = sqlite3.connect(path, timeout=0)
    con.execute("begin exclusive")
    locked.set()
    release.wait(seconds)
    con.rollback()
    con.close()


def test_a_locked_database_is_waited_out_then_refused_clearly(tmp_path, workdir, stores,
                                                               monkeypatch):
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    url = f"sqlite:///{tmp_path / 'locked.sqlite'}"
    store, keys = _synced(url, workdir, stores)
    runner = Runner("r", "h", 1)

    # held for a second from before the claim starts: the claim waits it out
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock,
                              args=(tmp_path / "locked.sqlite", locked, release, 1.0))
    holder.start()
    assert locked.wait(60)
    assert store.claim(keys[0], runner, "v1")  # waited for the lock with backoff
    holder.join()

    # held until the claim has given up: refused, with what to do
    monkeypatch.setattr(store, "retry_seconds", 0.5)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock,
                              args=(tmp_path / "locked.sqlite", locked, release))
    holder.start()
    assert locked.wait(60)
    try:
        with pytest.raises(StoreError, match="stayed locked or contended for 0 s .* another "
                                             "process holds it; retry when it finishes"):
            store.claim(keys[1], runner, "v1")
    finally:
        release.set()
        holder.join()
    assert dict(_rows(url, "select job_key, status from jobs"))[keys[1]] == "PENDING"


def test_a_reader_store_reads_and_cannot_write_on_either_database(db_url, workdir, stores):
    """On PostgreSQL every reader transaction is READ ONLY; on SQLite the connection is
    query_only: a write through a reader's own session is refused by the server."""
    _, keys = _synced(db_url, workdir, stores)
    reader = ResultStore(db_url, read_only=True)
    try:
        assert reader.study_names() == ["tiny"]
        assert set(reader.job_states(keys, "v1")) == set(keys)
        with pytest.raises(DatabaseError, match="read-only|readonly"), reader.session() as s:
            s.connection().exec_driver_sql("update studies set description = 'x'")
    finally:
        reader.close()
    assert _rows(db_url, "select description from studies") != [("x",)]


def test_the_dashboard_on_postgresql_never_shows_the_password(postgres, workdir, stores):
    """The server trusts loopback, so a password in the URL is accepted and ignored: the
    pages and the API name the database without it."""
    from starlette.testclient import TestClient

    from benchmark.serve import make_app

    url = postgres.url(f"d_{os.getpid()}").replace("cnnbench@", "cnnbench:s3cret-pw@")
    _synced(url, workdir, stores)
    reader = ResultStore(url, read_only=True)
    try:
        with TestClient(make_app(reader)) as client:
            for path in ("/", "/study/tiny", "/api/studies", "/api/studies/tiny",
                         "/api/studies/tiny/summary", "/compare?a=tiny&b=tiny"):
                page = client.get(path)
                assert page.status_code == 200, path
                assert "s3cret-pw" not in page.text, path
            assert "cnnbench:***@" in client.get("/api/studies").json()["database"]
    finally:
        reader.close()
