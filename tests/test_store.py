import functools
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from benchmark import Cell, JobStatus, Section, Study, TrainConfig
from benchmark.plan import expand, with_stored_seeds
from benchmark.records import EpochMetrics, JobResult
from benchmark.state import left_to_run
from benchmark.store import ResultStore, Runner, StoreError
from benchmark.store.tables import SCHEMA_VERSION

STUDY = Study("s", TrainConfig(train_size=100), seeds=[0, 1], sections=[
    Section("A", [Cell("base", published=97.3), Cell("BN", batch_norm=True)]),
    Section("B", [Cell("BN", batch_norm=True)]),
])
SPECS = expand(STUDY)


def _store(tmp_path, name="r.sqlite") -> ResultStore:
    store = ResultStore(f"sqlite:///{tmp_path / name}")
    store.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS)
    return store


def _runnable(store, cv, retry_failed=False) -> list[str]:
    """What a run of STUDY trains now under code version `cv` (state.left_to_run)."""
    return sorted(left_to_run(SPECS, store.job_states([s.key for s in SPECS], cv), retry_failed))


def _one_done(tmp_path):
    """A store whose first runnable job has a COMPLETE result under code version v1."""
    store = _store(tmp_path)
    key = _runnable(store, "v1")[0]
    me = Runner("me", "h", 1)
    store.claim(key, me, "v1")
    store.record(_result(key), me)
    return store, key, me


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
    assert len(_runnable(store, "v1")) == 4  # B's two cells are A's BN jobs


def test_claim_is_exclusive_and_record_round_trips(tmp_path):
    store = _store(tmp_path)
    key = _runnable(store, "v1")[0]
    me, other = Runner("me", "h", 1), Runner("other", "h", 2)
    assert store.claim(key, me, "v1")
    assert not store.claim(key, other, "v1")
    assert store.record(_result(key), me)
    state = store.job_states([key], "v1")[key]
    assert (state.status, state.test_accuracy) == ("COMPLETE", 97.5)
    assert key not in _runnable(store, "v1")
    assert not store.claim(key, other, "v1")  # done jobs are not claimable
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("select count(*) from epochs").fetchone() == (2,)
    assert con.execute("select test_accuracy, param_count, device, torch_version from runs"
                       ).fetchone() == (97.5, 10, "cpu", "x")


def test_new_code_version_makes_results_stale_and_keeps_old_runs(tmp_path):
    store, key, me = _one_done(tmp_path)
    assert store.job_states([key], "v2")[key].status == "STALE"
    assert key in _runnable(store, "v2")
    assert store.claim(key, me, "v2")
    store.record(_result(key, acc=98.0, cv="v2"), me)
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("select code_version, test_accuracy from runs order by run_id"
                       ).fetchall() == [("v1", 97.5), ("v2", 98.0)]


def test_failed_jobs_rerun_only_when_asked(tmp_path):
    store = _store(tmp_path)
    key = _runnable(store, "v1")[0]
    me = Runner("me", "h", 1)
    store.claim(key, me, "v1")
    store.record(JobResult(key, JobStatus.FAILED, error="Traceback: boom"), me)
    assert key not in _runnable(store, "v1")
    assert key in _runnable(store, "v1", retry_failed=True)
    assert store.job_states([key], "v1")[key].status == "FAILED"
    failed = store.results_frame("s").set_index("job_key").loc[key]
    assert (failed["status"] == "FAILED").all() and "boom" in failed["error"].iloc[0]


def test_release_and_reclaim_of_dead_runners(tmp_path):
    store = _store(tmp_path)
    a, b, c = _runnable(store, "v1")[:3]
    alive = Runner("alive", "h", 1)
    dead = Runner("dead", "h", 2**22 + 12345)  # no such pid
    elsewhere = Runner("far", "other-host", 2**22 + 12345)
    assert store.claim(a, alive, "v1") and store.claim(b, dead, "v1")
    assert store.claim(c, elsewhere, "v1")
    # on host "h": the dead pid is reclaimed; the other host's lease has not expired
    assert store.reclaim(host="h") == 1
    assert b in _runnable(store, "v1") and c not in _runnable(store, "v1")
    assert store.release(alive) == 1
    assert a in _runnable(store, "v1")


def _members(specs):
    """The runner's membership rule: the study file's cell runs and the seeds stored."""
    return functools.partial(with_stored_seeds, list(specs))


def test_resync_is_idempotent_and_follows_study_edits(tmp_path):
    store = _store(tmp_path)
    again = store.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS)
    assert (again.cells, again.jobs, again.new_jobs) == (6, 4, 0)
    # fewer seeds and fewer cells: the cells that left go, the seeds stored stay
    smaller = Study("s", TrainConfig(train_size=100), [Section("A", [Cell("base")])])
    kept = store.sync_study("s", "s.py", "hash2", "", smaller.sections, expand(smaller),
                            membership=_members(expand(smaller)))
    frame = store.results_frame("s")
    assert list(zip(frame["cell"], frame["seed"], strict=True)) == [("base", 0), ("base", 1)]
    assert (kept.cells, kept.kept_seeds) == (2, 1)
    # a redefined cell drops the seeds stored for its old definition
    changed = Study("s", TrainConfig(train_size=100), [Section("A", [Cell("base", lr=0.1)])])
    store.sync_study("s", "s.py", "hash3", "", changed.sections, expand(changed),
                     membership=_members(expand(changed)))
    frame = store.results_frame("s")
    assert frame["seed"].tolist() == [0] and frame["lr"].tolist() == [0.1]


def test_seeds_run_earlier_stay_in_the_study_and_can_be_narrowed(tmp_path):
    store = _store(tmp_path)
    more = expand(STUDY.with_seeds([0, 1, 2, 3, 4]))
    store.sync_study("s", "s.py", "hash", "", STUDY.sections, more)
    plain = store.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS,  # seeds 0, 1
                             membership=_members(SPECS))
    assert (plain.cells, plain.kept_seeds) == (15, 9)
    assert sorted(set(store.results_frame("s")["seed"])) == [0, 1, 2, 3, 4]
    assert sorted(set(store.results_frame("s", seeds=[3])["seed"])) == [3]
    assert set(store.epochs_frame("s", seeds=[3]).get("seed", [])) <= {3}


def test_heartbeat_extends_the_leases_of_its_runner_only(tmp_path):
    store = _store(tmp_path)
    a, b = _runnable(store, "v1")[:2]
    me, other = Runner("me", "h", 1), Runner("other", "h", 2)
    assert store.claim(a, me, "v1") and store.claim(b, other, "v1")
    con = sqlite3.connect(tmp_path / "r.sqlite")
    con.execute("update jobs set lease_expires='2000-01-01 00:00:00.000000'")
    con.commit()
    store.heartbeat_seconds = 0.05
    with store.keep_alive(me):  # wait for a beat to land: an observable state, no sleep
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and con.execute(
                "select lease_expires from jobs where job_key=?", (a,)).fetchone()[0] < "2001":
            time.sleep(0.02)
    leases = dict(con.execute("select job_key, lease_expires from jobs where status='RUNNING'"))
    assert leases[a] > "2020" and leases[b] < "2001"
    assert store.reclaim(host="elsewhere") == 1  # only the lease nobody extended expired
    assert store.job_states([a, b], "v1")[b].status == JobStatus.PENDING


def test_a_result_after_a_lost_lease_is_kept_but_does_not_take_the_job_back(tmp_path):
    store = _store(tmp_path)
    key = _runnable(store, "v1")[0]
    slow, fast = Runner("slow", "h", 1), Runner("fast", "h", 2)
    assert store.claim(key, slow, "v1")
    con = sqlite3.connect(tmp_path / "r.sqlite")
    con.execute("update jobs set lease_expires='2000-01-01 00:00:00.000000'")  # slow missed beats
    con.commit()
    assert store.reclaim(host="elsewhere") == 1 and store.claim(key, fast, "v1")
    assert store.record(_result(key, acc=90.0), slow) is False  # lease lost
    assert con.execute("select count(*) from runs").fetchone() == (1,)  # result kept
    assert con.execute("select status, runner from jobs where job_key=?",
                       (key,)).fetchone() == ("RUNNING", "fast")
    assert store.record(_result(key, acc=91.0), fast) is True
    assert store.job_states([key], "v1")[key].test_accuracy == 91.0


def test_a_version_1_database_is_migrated_and_keeps_its_results(tmp_path):
    store, key, me = _one_done(tmp_path)
    store.close()
    con = sqlite3.connect(tmp_path / "r.sqlite")
    con.execute("drop table study_claims")  # what schema 1 lacked
    con.execute("update cnnbench_meta set value='1' where name='schema_version'")
    con.commit()
    migrated = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert con.execute("select value from cnnbench_meta").fetchone() == (str(SCHEMA_VERSION),)
    assert "study_claims" in {r[0] for r in con.execute("select name from sqlite_master")}
    assert migrated.job_states([key], "v1")[key].test_accuracy == 97.5
    migrated.sync_study("s", "s.py", "hash", "", STUDY.sections, SPECS, STUDY.claims)


def test_newer_schema_and_foreign_databases_are_refused_untouched(tmp_path):
    path = tmp_path / "r.sqlite"
    _store(tmp_path).close()
    con = sqlite3.connect(path)
    con.execute("update cnnbench_meta set value=? where name='schema_version'",
                (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()
    newer = path.read_bytes()
    with pytest.raises(StoreError, match="newer than this cnnbench understands.*upgrade"):
        ResultStore(f"sqlite:///{path}")
    foreign = tmp_path / "other.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("create table customers (id integer)")
    con.close()
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="not a cnnbench database .*customers"):
        ResultStore(f"sqlite:///{foreign}")
    for db, content in ((path, newer), (foreign, before)):  # byte for byte, nothing beside
        assert db.read_bytes() == content, db
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(db.name + "-")]


def test_reading_never_creates_a_database(tmp_path):
    with pytest.raises(StoreError, match="no such database: .*none.sqlite"):
        ResultStore(f"sqlite:///{tmp_path / 'none.sqlite'}", create=False)
    store = ResultStore(f"sqlite:///{tmp_path / 'none.sqlite'}", create=False, required=False)
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


def test_a_database_written_by_schema_2_code_opens_migrated_with_every_result(tmp_path):
    """tests/data/schema2_tiny.sql: the tiny study as cnnbench 5802c29 stored it (schema
    2, before schedules). Opened now, it gains the new columns and keeps every result,
    every job key and its currency under the training version."""
    from conftest import old_database

    from benchmark.config import CONFIG_FIELDS
    from benchmark.provenance import code_version

    path = tmp_path / "old.sqlite"
    old_database("schema2_tiny.sql", path)
    store = ResultStore(f"sqlite:///{path}", create=False)
    con = sqlite3.connect(path)
    assert con.execute("select value from cnnbench_meta").fetchone() == (str(SCHEMA_VERSION),)
    rows = store.results_frame("tiny")
    assert len(rows) == 6 and set(rows["status"]) == {"COMPLETE"}
    assert set(rows["schedule"]) == {"constant"} and set(rows["warmup_epochs"]) == {0}
    assert set(rows["augment"]) == {"none"}  # schema 8: the jobs of before, unaugmented
    assert rows["slurm_job_id"].isna().all()  # schema 7: no run was a Slurm job's
    assert con.execute("select distinct factors from jobs").fetchall() == [("{}",)]  # 9
    for _, row in rows.iterrows():  # a job's key is still its config's key
        config = TrainConfig(**{f: row[f] if f != "train_size" else int(row[f])
                                for f in CONFIG_FIELDS if f != "factors"})
        assert config.key() == row["job_key"]
    states = store.job_states(rows["job_key"], code_version())
    assert {s.status for s in states.values()} == {JobStatus.COMPLETE}  # not stale
    assert con.execute("select count(*) from runs").fetchone() == (4,)
    store.close()


def test_path_keyed_jobs_of_a_directory_dataset_take_their_content_key_and_rerun(tmp_path):
    """tests/data/schema2_tiny.sql was written with its dataset at
    /tmp/cnnbench-fixture/idx, keyed by that path. Synced now, each job takes its content
    key with its history; its runs (MNIST's normalisation) show as STALE and run again."""
    import shutil

    from conftest import STUDIES, make_idx_dir, old_database

    from benchmark.provenance import code_version
    from benchmark.store import LEGACY_NORM
    from benchmark.studyfile import load_study

    folder = Path("/tmp/cnnbench-fixture")
    shutil.rmtree(folder, ignore_errors=True)
    make_idx_dir(folder / "idx")  # the same synthetic files, at the path stored
    shutil.copy(STUDIES / "tiny.py", folder / "tiny.py")
    path = tmp_path / "old.sqlite"
    old_database("schema2_tiny.sql", path)
    try:
        loaded = load_study(folder / "tiny.py")
        store = ResultStore(f"sqlite:///{path}", create=False)
        assert all(s.config.data_hash for s in loaded.specs)
        states = store.job_states([s.key for s in loaded.specs], code_version())
        assert states == {}  # content keys: not in the database before the sync
        study = loaded.study
        store.sync_study(study.name, str(loaded.path), loaded.file_hash, "", study.sections,
                         loaded.specs)
        states = store.job_states([s.key for s in loaded.specs], code_version())
        assert len(states) == 4 and {s.status for s in states.values()} == {JobStatus.STALE}
        rows = store.results_frame("tiny")
        assert set(rows["job_key"]) == {s.key for s in loaded.specs}
        assert set(rows["code_version"]) == {code_version() + LEGACY_NORM}
        assert rows["test_accuracy"].notna().all()  # the old results are kept
        con = sqlite3.connect(path)
        assert con.execute("select count(*) from jobs").fetchone() == (4,)  # renamed, not new
        assert con.execute("select count(*) from runs").fetchone() == (4,)
        con.close()
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_job_stored_before_unused_settings_were_normalised_keeps_its_results(tmp_path):
    """An Adam cell on an SGD baseline with momentum 0.9 was keyed with momentum 0.9 before
    unused settings left job keys: its stored job is adopted under the plain Adam key, with
    its results, so nothing retrains and no seed is lost."""
    study = Study("m", TrainConfig(momentum=0.9, train_size=100), seeds=[0, 1], sections=[
        Section("K", [Cell("SGD"), Cell("Adam", optimizer="adam", lr=1e-3)])])
    specs = expand(study)
    adam = [s for s in specs if s.cell == "Adam"]
    assert all(s.earlier_key and s.earlier_key != s.key for s in adam)
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    store.sync_study("m", "m.py", "h", "", study.sections, specs)
    runner = Runner("r", "h", 1)
    for s in specs:
        store.claim(s.key, runner, "v1")
        store.record(JobResult(s.key, JobStatus.COMPLETE, code_version="v1",
                               epochs=(EpochMetrics(1, 0.5, 0.4, 90.0, 1.0),)), runner)
    con = sqlite3.connect(tmp_path / "r.sqlite")  # as an older cnnbench stored them
    for s in adam:
        con.execute("update jobs set job_key = ?, momentum = 0.9 where job_key = ?",
                    (s.earlier_key, s.key))
    con.commit()
    con.close()
    fewer = Study("m", study.baseline, seeds=[0], sections=study.sections)  # seed 1 stored
    store.sync_study("m", "m.py", "h", "", fewer.sections, expand(fewer),
                     membership=_members(expand(fewer)))
    states = store.job_states([s.key for s in specs], "v1")
    assert {states[s.key].status for s in specs} == {JobStatus.COMPLETE}
    con = sqlite3.connect(tmp_path / "r.sqlite")
    rows = con.execute("select job_key, momentum from jobs where optimizer = 'adam'").fetchall()
    assert sorted(rows) == sorted((s.key, 0.5) for s in adam)
    assert con.execute("select count(*) from study_cells where cell = 'Adam'").fetchone() == (2,)


def test_a_result_written_again_after_a_lost_connection_is_stored_once(tmp_path):
    """A retry of `record` whose first commit reached the server (the connection died
    before the answer) finds that attempt's run row and writes nothing more."""
    store, key, me = _one_done(tmp_path)
    assert store.record(_result(key), me)  # the same attempt again: same runner and start
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("select count(*) from runs").fetchone() == (1,)
    assert con.execute("select count(*) from epochs").fetchone() == (2,)
    later = JobResult(**{**_result(key).__dict__, "started_at": 5.0})  # another attempt
    store.record(later, me)
    assert con.execute("select count(*) from runs").fetchone() == (2,)


def test_a_lost_server_is_told_once_and_waited_for(tmp_path):
    """`_lost` errors (PostgreSQL's words) are waited out for `retry_seconds`, with one
    notice when the server goes and one when it is back; other errors are not retried."""
    from sqlalchemy.exc import OperationalError

    from benchmark.store import retry

    store, heard, calls = _store(tmp_path), [], []
    store.notify = heard.append

    class Flaky:
        url = store.url
        retry_seconds = 30.0
        _told = store._told

        @retry.retried
        def write(self):
            calls.append(1)
            if len(calls) < 3:
                raise OperationalError("INSERT", {}, Exception(
                    "terminating connection due to administrator command"))
            return "written"

    assert Flaky().write() == "written" and len(calls) == 3
    assert len(heard) == 2 and heard[0].startswith("lost the database") and \
        "administrator command" in heard[0] and "is back after" in heard[1], heard
    Flaky.retry_seconds = 0.0
    calls.clear()
    with pytest.raises(StoreError, match="stayed unreachable for 0 s .* check the server"):
        Flaky().write()


def test_live_epochs_are_the_current_attempts_of_the_runner_holding_the_job(tmp_path,
                                                                            monkeypatch):
    """A reader sees the epochs of the attempt running now, not those an earlier attempt
    wrote before it was interrupted; and a runner whose lease was reclaimed, still training,
    writes none for the job another runner holds now."""
    from benchmark.store import leases

    store = _store(tmp_path)
    key = SPECS[0].key
    first, second = Runner("first", "far", 1), Runner("second", "far", 2)
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=-1))  # the first lease expires
    assert store.claim(key, first, "v1")
    assert store.record_epochs(first, [(key, EpochMetrics(e, 0.5, 0.4, 80.0 + e, 1.0))
                                       for e in (1, 2)]) == 2
    monkeypatch.undo()
    assert store.reclaim() == 1 and store.claim(key, second, "v1")  # the second attempt
    assert store.record_epochs(second, [(key, EpochMetrics(1, 0.6, 0.5, 70.0, 1.0))]) == 1
    assert store.record_epochs(first, [(key, EpochMetrics(3, 0.4, 0.3, 83.0, 1.0))]) == 0
    live = store.live_epochs([key])
    assert list(zip(live["epoch"], live["test_accuracy"], strict=True)) == [(1, 70.0)]
    by_study = store.live_epochs(study="s")
    assert set(by_study["test_accuracy"]) == {70.0}
    # the dashboard's reads too: the cell rows and the job's page
    rows = [r for r in store.cell_runs("s") if r.job_key == key]
    assert rows and {r.live_epochs for r in rows} == {1}, rows
    assert [e["test_accuracy"] for e in store.job_detail(key)["live_epochs"]] == [70.0]
