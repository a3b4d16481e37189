import sqlite3

import pytest

from benchmark import Cell, JobStatus, Section, Study, TrainConfig
from benchmark.plan import expand
from benchmark.spec import EpochMetrics, JobResult
from benchmark.store import ResultStore, Runner, StoreError
from benchmark.tables import SCHEMA_VERSION

STUDY = Study("s", TrainConfig(train_size=100), seeds=[0, 1], sections=[
    Section("A", [Cell("base", published=97.3), Cell("BN", batch_norm=True)]),
    Section("B", [Cell("BN", batch_norm=True)]),
])
SPECS = expand(STUDY)


def _store(tmp_path, name="r.sqlite") -> ResultStore:
    store = ResultStore(f"sqlite:///{tmp_path / name}")
    store.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS)
    return store


def _result(key, status=JobStatus.COMPLETE, acc=97.5, cv="v1"):
    epochs = (EpochMetrics(1, 0.5, 0.4, acc - 1, 1.0), EpochMetrics(2, 0.3, 0.2, acc, 1.0))
    return JobResult(key, status, epochs=epochs, param_count=10, train_seconds=2.0,
                     wall_seconds=3.0, started_at=0.0, finished_at=3.0, device="cpu",
                     host="h", code_version=cv, versions={"torch": "x"})


def test_grid_is_written_before_anything_runs(tmp_path):
    store = _store(tmp_path)
    cells = store.results_frame("s")
    assert len(cells) == 6 and set(cells["status"]) == {"PENDING"}
    assert cells["published"].iloc[0] == 97.3
    assert len(store.runnable("s", "v1")) == 4  # B's two cells are A's BN jobs


def test_claim_is_exclusive_and_record_round_trips(tmp_path):
    store = _store(tmp_path)
    key = store.runnable("s", "v1")[0]
    me, other = Runner("me", "h", 1), Runner("other", "h", 2)
    assert store.claim(key, me, "v1")
    assert not store.claim(key, other, "v1")
    assert store.record(_result(key), me)
    state = store.job_states([key], "v1")[key]
    assert (state.status, state.test_accuracy) == ("COMPLETE", 97.5)
    assert key not in store.runnable("s", "v1")
    assert not store.claim(key, other, "v1")  # done jobs are not claimable
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("select count(*) from epochs").fetchone() == (2,)
    assert con.execute("select test_accuracy, param_count, device, torch_version from runs"
                       ).fetchone() == (97.5, 10, "cpu", "x")


def test_new_code_version_makes_results_stale_and_keeps_old_runs(tmp_path):
    store = _store(tmp_path)
    key = store.runnable("s", "v1")[0]
    me = Runner("me", "h", 1)
    store.claim(key, me, "v1")
    store.record(_result(key), me)
    assert store.job_states([key], "v2")[key].status == "STALE"
    assert key in store.runnable("s", "v2")
    assert store.claim(key, me, "v2")
    store.record(_result(key, acc=98.0, cv="v2"), me)
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("select code_version, test_accuracy from runs order by run_id"
                       ).fetchall() == [("v1", 97.5), ("v2", 98.0)]


def test_failed_jobs_rerun_only_when_asked(tmp_path):
    store = _store(tmp_path)
    key = store.runnable("s", "v1")[0]
    me = Runner("me", "h", 1)
    store.claim(key, me, "v1")
    store.record(JobResult(key, JobStatus.FAILED, error="Traceback: boom"), me)
    assert key not in store.runnable("s", "v1")
    assert key in store.runnable("s", "v1", retry_failed=True)
    assert store.job_states([key], "v1")[key].status == "FAILED"
    failed = store.results_frame("s").set_index("job_key").loc[key]
    assert (failed["status"] == "FAILED").all() and "boom" in failed["error"].iloc[0]


def test_release_and_reclaim_of_dead_runners(tmp_path):
    store = _store(tmp_path)
    a, b, c = store.runnable("s", "v1")[:3]
    alive = Runner("alive", "h", 1)
    dead = Runner("dead", "h", 2**22 + 12345)  # no such pid
    elsewhere = Runner("far", "other-host", 2**22 + 12345)
    assert store.claim(a, alive, "v1") and store.claim(b, dead, "v1")
    assert store.claim(c, elsewhere, "v1")
    # on host "h": the dead pid is reclaimed; the other host's lease has not expired
    assert store.reclaim(host="h") == 1
    assert b in store.runnable("s", "v1") and c not in store.runnable("s", "v1")
    assert store.release(alive) == 1
    assert a in store.runnable("s", "v1")


def test_resync_is_idempotent_and_follows_study_edits(tmp_path):
    store = _store(tmp_path)
    again = store.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS)
    assert (again.cells, again.jobs, again.new_jobs) == (6, 4, 0)
    smaller = Study("s", TrainConfig(train_size=100), [Section("A", [Cell("base")])])
    store.sync_study("s", "s.py", "hash2", "", smaller.sections, expand(smaller))
    assert store.results_frame("s")["cell"].tolist() == ["base"]


def test_newer_schema_and_foreign_databases_are_refused_untouched(tmp_path):
    path = tmp_path / "r.sqlite"
    _store(tmp_path).close()
    con = sqlite3.connect(path)
    con.execute("update cnnbench_meta set value=? where name='schema_version'",
                (str(SCHEMA_VERSION + 1),))
    con.commit()
    with pytest.raises(StoreError, match="newer than this cnnbench understands.*upgrade"):
        ResultStore(f"sqlite:///{path}")
    foreign = tmp_path / "other.sqlite"
    sqlite3.connect(foreign).execute("create table customers (id integer)")
    with pytest.raises(StoreError, match="not a cnnbench database .*customers"):
        ResultStore(f"sqlite:///{foreign}")
    assert sqlite3.connect(foreign).execute(
        "select name from sqlite_master").fetchall() == [("customers",)]


def test_reading_never_creates_a_database(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'none.sqlite'}", create=False)
    assert store.results_frame("s").empty and store.job_states(["k"], "v1") == {}
    assert not (tmp_path / "none.sqlite").exists()


def test_bad_urls_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="directory .* does not exist"):
        ResultStore(f"sqlite:///{tmp_path}/no/such/dir/r.sqlite")
    with pytest.raises(StoreError, match="bad database URL") as excinfo:
        ResultStore("nosuchdialect://user:secret@host/db")
    assert "secret" not in str(excinfo.value)  # passwords never reach messages
    (tmp_path / "text.sqlite").write_text("hello, I am not a database" * 100)
    with pytest.raises(StoreError, match="not a usable database"):
        ResultStore(f"sqlite:///{tmp_path / 'text.sqlite'}")
