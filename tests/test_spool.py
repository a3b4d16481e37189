"""`spool`: results kept on local disk while the database is away, recorded once by the
next run: never over another runner's job or a newer result, never into another database,
never twice by two runners replaying one folder."""

import os
import subprocess
import sys

from test_store import SPECS, _result, _store

from benchmark import JobStatus, provenance, spool
from benchmark.store import Runner

KEY = next(s.key for s in SPECS if not s.skip_reason)


def _gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_kept_result_is_recorded_once_and_takes_its_released_job(tmp_path):
    store = _store(tmp_path)
    away = Runner("away", provenance.host(), _gone_pid())  # the run that lost the database
    assert store.claim(KEY, away, "v1")
    store.release(away)  # its jobs went back to PENDING meanwhile
    spool.keep(store.url, _result(KEY, cv="v1"), away)
    assert spool.replay(store) == 1 and spool.kept(store.url) == []
    assert store.job_states([KEY], "v1")[KEY].status == JobStatus.COMPLETE
    spool.keep(store.url, _result(KEY, cv="v1"), away)  # the same attempt, kept again
    assert spool.replay(store) == 1
    runs = store.results_frame("s")
    assert (runs["job_key"] == KEY).sum() and store.engine.connect().exec_driver_sql(
        "select count(*) from runs").scalar() == 1  # written once


def test_a_kept_failure_never_overwrites_a_result_another_runner_recorded(tmp_path):
    store = _store(tmp_path)
    away, other = Runner("away", "h", _gone_pid()), Runner("other", "h", 2)
    assert store.claim(KEY, away, "v1")
    store.release(away)
    assert store.claim(KEY, other, "v2") and store.record(_result(KEY, cv="v2"), other)
    spool.keep(store.url, _result(KEY, JobStatus.FAILED, cv="v1"), away)
    spool.replay(store)
    assert store.job_states([KEY], "v2")[KEY].status == JobStatus.COMPLETE
    assert store.engine.connect().exec_driver_sql(
        "select count(*) from runs where status = 'FAILED'").scalar() == 0
    assert spool.kept(store.url) == []


def test_another_live_runners_files_are_its_own_and_a_refused_one_is_set_aside(tmp_path):
    store = _store(tmp_path)
    live = Runner("live", provenance.host(), os.getppid())  # alive, not this process
    spool.keep(store.url, _result(KEY, cv="v1"), live)
    assert spool.replay(store) == 0 and len(spool.kept(store.url)) == 1  # left to it
    spool.drop(spool.kept(store.url)[0])
    stranger = Runner("x", "far", 1)
    spool.keep(store.url, _result("no-such-job", cv="v1"), stranger)
    warned = []
    assert spool.replay(store, warned.append) == 0 and spool.kept(store.url) == []
    assert "moved to" in warned[0] and list(spool.folder(store.url).glob("*.refused"))


def test_one_relative_path_in_two_folders_is_two_spools(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    here = spool.folder("sqlite:///results/cnnbench.sqlite")
    monkeypatch.chdir(tmp_path / "b")
    assert spool.folder("sqlite:///results/cnnbench.sqlite") != here
    assert spool.folder("postgresql://u:secret@h/db") == spool.folder("postgresql://u:other@h/db")
