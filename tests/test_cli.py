
"""End to end through the command line, on the small IDX dataset the fixtures write."""

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from conftest import make_idx_dir

from benchmark.store.tables import SCHEMA_VERSION


def _statuses(db):
    con = sqlite3.connect(db)
    return dict(con.execute("select status, count(*) from jobs group by status").fetchall())


def test_run_then_rerun_trains_nothing(workdir, cli):
    first = cli("run", "tiny.py", "--jobs", "1")
    assert first.exit_code == 0, first.output
    assert "4 distinct jobs (4 new)" in first.output and "finished: 4 complete" in first.output
    assert _statuses(workdir / "results" / "cnnbench.sqlite") == {"COMPLETE": 4}
    second = cli("run", "tiny.py")
    assert second.exit_code == 0
    assert "Nothing to run" in second.output and "training" not in second.output

    status = json.loads(cli("status", "tiny.py", "--json").output)
    assert status["sections"] == {"A": {"COMPLETE": 4}, "B": {"COMPLETE": 2}}
    assert status["done"] is True
    listing = cli("list", "tiny.py").output
    assert "[A] batch norm: 2 cells, 4 jobs, 4 done" in listing
    assert "published 90.0%" in listing
    more = cli("list", "tiny.py", "--seeds", "0,1,2").output
    assert "6 distinct jobs to train, 4 done, 2 to run" in more


def test_seeds_option_adds_replicates(workdir, cli):
    result = cli("run", "tiny.py", "--jobs", "1", "--seeds", "0,1,2", "--db", "r.sqlite")
    assert result.exit_code == 0, result.output
    assert "finished: 6 complete" in result.output
    assert cli("run", "tiny.py", "--seeds", "0,x").exit_code == 2


def test_dry_run_and_list_run_nothing_and_write_nothing(workdir, cli):
    result = cli("run", "tiny.py", "--dry-run", "--jobs", "2")
    assert result.exit_code == 0
    assert "4 distinct jobs to train, 0 done, 4 to run" in result.output
    assert "would train on 2 slot(s)" in result.output
    assert "calibrating 2 network(s)" in result.output  # SK0.2 with and without BN
    assert re.search(r"estimated wall time \d+m\d\ds for 4 job\(s\)", result.output)
    assert "does not exist yet" in result.output
    for command in ("status", "list"):  # reading commands on a missing database: refused
        refused = cli(command, "tiny.py")
        assert refused.exit_code == 2 and "no such database" in refused.output
    assert not (workdir / "results").exists()


def test_fused_run_with_sparse_evaluation_records_every_job_and_reports(workdir, cli):
    result = cli("run", "tiny.py", "--jobs", "1", "--fuse", "2", "--eval-every", "2")
    assert result.exit_code == 0, result.output
    assert "training 4 job(s) in 2 fused group(s)" in result.output
    db = workdir / "results" / "cnnbench.sqlite"
    assert _statuses(db) == {"COMPLETE": 4}
    rows = sqlite3.connect(db).execute(
        "select epoch, count(*), count(test_accuracy) from epochs group by epoch").fetchall()
    assert rows == [(1, 4, 0), (2, 4, 4)]  # epoch 1 not evaluated, the last always
    report = cli("report", "tiny.py")
    assert report.exit_code == 0, report.output
    assert (workdir / "reports" / "tiny" / "index.html").exists()


def test_run_on_a_local_dask_cluster(workdir, cli):
    pytest.importorskip("distributed")
    result = cli("run", "tiny.py", "--backend", "dask", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "Dask: a local cluster of 2 worker(s), 2 worker thread(s)" in result.output
    assert "training 4 job(s) on the Dask cluster" in result.output
    db = workdir / "results" / "cnnbench.sqlite"
    assert _statuses(db) == {"COMPLETE": 4}
    runs = sqlite3.connect(db).execute("select count(*), count(distinct job_id) from runs")
    assert runs.fetchone() == (4, 4)  # every job exactly once


@pytest.mark.parametrize("args,message", [
    (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler needs --backend dask"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
])
def test_dask_options_misused_or_unreachable(workdir, cli, args, message):
    pytest.importorskip("distributed")
    db = workdir / "results" / "cnnbench.sqlite"
    cli("run", "tiny.py", "--dry-run")
    result = cli("run", "tiny.py", *args)
    assert result.exit_code == 2 and message in result.output
    assert not db.exists() or _statuses(db).get("COMPLETE") is None


def test_a_full_disk_while_recording_stops_with_a_clear_message(workdir, cli, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from benchmark.store import ResultStore

    real_record, calls = ResultStore.record, []

    def record(self, result, runner, adopt=False):
        calls.append(result.key)
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("database or disk is full"))
        return real_record(self, result, runner, adopt)

    monkeypatch.setattr(ResultStore, "record", record)
    result = cli("run", "tiny.py", "--jobs", "1")
    assert result.exit_code == 1
    assert "cannot write results to" in result.output
    assert "database or disk is full" in result.output
    assert "Traceback" not in result.output
    # no job starts after the failure; the result it failed to write was kept and, the
    # database writable again at the run's last try, recorded: nothing lost, nothing twice
    assert "2 job(s) finished and saved" in result.output
    assert "every finished result is recorded" in result.output
    db = workdir / "results" / "cnnbench.sqlite"
    assert _statuses(db) == {"COMPLETE": 2, "PENDING": 2}  # nothing left RUNNING
    monkeypatch.setattr(ResultStore, "record", real_record)
    again = cli("run", "tiny.py", "--jobs", "1")
    assert again.exit_code == 0 and "training 2 job(s)" in again.output


def test_a_failing_job_is_recorded_while_the_others_finish(workdir, cli):
    broken = make_idx_dir(workdir / "broken", 200, 50, gz=True)
    images = broken / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:3000])  # the header reads, the stream is cut
    result = cli("run", "failing.py", "--jobs", "2")
    assert result.exit_code == 1
    assert "FAILED A/broken seed 0" in result.output and "truncated" in result.output
    db = workdir / "results" / "cnnbench.sqlite"
    assert _statuses(db) == {"COMPLETE": 2, "FAILED": 1}
    error, = sqlite3.connect(db).execute("select error from runs where status='FAILED'").fetchone()
    assert error.startswith("Traceback") and "DataError" in error
    again = cli("run", "failing.py")
    assert again.exit_code == 0
    assert "1 failed job(s) kept; rerun with --retry-failed" in again.output
    # the dry run counts what the run would train: the same rule, --retry-failed included
    assert "3 distinct jobs to train, 2 done, 0 to run" in cli("run", "failing.py",
                                                                "--dry-run").output
    assert "2 done, 1 to run" in cli("run", "failing.py", "--dry-run", "--retry-failed").output
    con = sqlite3.connect(db)
    con.execute("update jobs set status='RUNNING', runner='other', runner_host='far-away', "
                "runner_pid=1, lease_expires='2999-01-01 00:00:00.000000' "
                "where status='FAILED'")  # another machine's runner holds it, lease live
    con.commit()
    assert "0 to run" in cli("run", "failing.py", "--dry-run", "--retry-failed").output
    con.execute("update jobs set lease_expires='2000-01-01 00:00:00.000000' "
                "where status='RUNNING'")  # ... until its lease expires
    con.commit()
    assert "1 to run" in cli("run", "failing.py", "--dry-run").output
    con.execute("update jobs set status='FAILED', runner=null, runner_host=null, "
                "runner_pid=null, lease_expires=null where status='RUNNING'")
    con.commit()
    con.close()
    retry = cli("run", "failing.py", "--retry-failed", "--jobs", "1")
    assert retry.exit_code == 1 and "finished: 1 failed" in retry.output
    runs = sqlite3.connect(db).execute("select status, count(*) from runs group by status")
    assert dict(runs.fetchall()) == {"COMPLETE": 2, "FAILED": 2}


# Bad study files and options: see the catalogue in test_bad_input.py.


def test_bad_options_and_databases_exit_2(workdir, cli):
    assert "bad device 'tpu'" in cli("run", "tiny.py", "--devices", "tpu").output
    assert cli("run", "tiny.py", "--jobs", "0").exit_code == 2
    missing_dir = cli("run", "tiny.py", "--db", "no/such/dir/r.sqlite")
    assert missing_dir.exit_code == 2 and "does not exist" in missing_dir.output

    assert cli("run", "tiny.py", "--jobs", "1", "--db", "r.sqlite").exit_code == 0
    con = sqlite3.connect(workdir / "r.sqlite")
    con.execute("update cnnbench_meta set value=?", (str(SCHEMA_VERSION + 1),))
    con.commit()
    before = (workdir / "r.sqlite").read_bytes()
    newer = cli("run", "tiny.py", "--db", "r.sqlite")
    assert newer.exit_code == 2 and "newer than this cnnbench" in newer.output
    assert (workdir / "r.sqlite").read_bytes() == before


def test_db_from_environment(workdir, cli, monkeypatch):
    monkeypatch.setenv("CNNBENCH_DB", str(workdir / "env.sqlite"))
    assert cli("run", "tiny.py", "--jobs", "1").exit_code == 0
    assert _statuses(workdir / "env.sqlite") == {"COMPLETE": 4}


def test_data_command_checks_idx_directories_and_reports_missing_mnist(workdir, cli):
    ok = cli("data", "--check", "idx")
    assert ok.exit_code == 0 and "usable as a study's dataset" in ok.output
    listing = cli("data")  # every named dataset and its state; absent is no error here
    assert listing.exit_code == 0, listing.output
    assert "mnist: MNIST handwritten digits, not ready, in " in listing.output
    assert "fashion-mnist: Fashion-MNIST (Zalando) clothing, not ready" in listing.output
    missing = cli("data", "mnist")
    assert missing.exit_code == 2 and "run `cnnbench data --fetch mnist`" in missing.output


def test_a_study_never_loses_seeds_and_every_command_can_narrow_them(workdir, cli):
    five = cli("run", "tiny.py", "--jobs", "1", "--seeds", "0,1,2,3,4", "--db", "r.sqlite")
    assert five.exit_code == 0, five.output
    plain = cli("run", "tiny.py", "--db", "r.sqlite")  # the file's seeds: 0 and 1
    assert plain.exit_code == 0 and "Nothing to run" in plain.output, plain.output
    assert "9 cell run(s) of seeds stored earlier" in plain.output  # 3 seeds x 3 cells
    status = json.loads(cli("status", "tiny.py", "--db", "r.sqlite", "--json").output)
    assert status["total"] == {"COMPLETE": 15}
    narrowed = json.loads(cli("status", "tiny.py", "--db", "r.sqlite", "--json",
                              "--seeds", "3").output)
    assert narrowed["total"] == {"COMPLETE": 3}
    listing = cli("list", "tiny.py", "--db", "r.sqlite").output
    assert "15 cell runs, 10 distinct jobs to train, 10 done, 0 to run" in listing
    assert cli("report", "--db", "r.sqlite", "--format", "md").exit_code == 0
    md = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert re.search(r"\| BN \| 5 \|", md), md  # n = 5 seeds, not the file's 2
    cli("report", "--db", "r.sqlite", "--format", "md", "--seeds", "0,1")
    md = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert re.search(r"\| BN \| 2 \|", md), md


DIVERGING = '''
from benchmark import Cell, Section, Study, TrainConfig

def study():
    base = TrainConfig(arch="sk", width=0.2, epochs=2, batch_size=32, train_size=128,
                       dataset="idx")
    return Study(name="div", baseline=base,
                 sections=[Section("A", [Cell("ok"), Cell("huge lr", lr=1e12)])])
'''


def test_a_diverged_job_is_a_result_through_store_cli_and_report(workdir, cli):
    (workdir / "div.py").write_text(DIVERGING)
    run = cli("run", "div.py", "--jobs", "1")
    assert run.exit_code == 0, run.output  # a diverged run is a result, not a failure
    assert "finished: 1 complete, 1 diverged" in run.output
    db = workdir / "results" / "cnnbench.sqlite"
    assert _statuses(db) == {"COMPLETE": 1, "DIVERGED": 1}
    error, = sqlite3.connect(db).execute("select error from runs where status='DIVERGED'"
                                         ).fetchone()
    assert "non-finite" in error
    status = json.loads(cli("status", "div.py", "--json").output)
    assert status["total"] == {"COMPLETE": 1, "DIVERGED": 1} and status["done"] is True
    assert "Nothing to run" in cli("run", "div.py").output  # done: not retrained
    assert cli("report", "div", "--format", "md").exit_code == 0
    md = (workdir / "reports" / "div" / "report.md").read_text()
    assert re.search(r"\| A \| huge lr \| 0 \| DIVERGED \| .*non-finite", md), md


def test_bf16_on_a_cpu_without_native_bf16_is_warned_about(workdir, cli, monkeypatch):
    from benchmark import hardware

    (workdir / "bf.py").write_text((workdir / "tiny.py").read_text().replace(
        'lr=0.05,', 'lr=0.05, precision="bf16",'))
    emulated = {"model": "AMD EPYC (test)", "isa": "AVX2", "amx": False,
                "avx512_bf16": False, "bf16_native": False}
    monkeypatch.setattr(hardware, "cpu_capability", lambda: emulated)
    result = cli("run", "bf.py", "--dry-run")
    assert "no native bf16" in result.output and "AMD EPYC (test), AVX2" in result.output
    assert "0.11x the speed of fp32" in result.output
    monkeypatch.setattr(hardware, "cpu_capability", lambda: {**emulated, "bf16_native": True})
    assert "no native bf16" not in cli("run", "bf.py", "--dry-run").output
    assert "no native bf16" not in cli("run", "tiny.py", "--dry-run").output  # fp32


def test_a_user_network_trains_reports_and_reruns_after_its_module_is_edited(workdir, cli):
    first = cli("run", "mine.py", "--jobs", "2")
    assert first.exit_code == 0, first.output
    assert "4 distinct jobs (4 new)" in first.output and "finished: 4 complete" in first.output
    db = workdir / "results" / "cnnbench.sqlite"
    con = sqlite3.connect(db)
    mine = con.execute("select job_id, arch_hash from jobs where arch='mynets:small_cnn'"
                       ).fetchall()
    assert len(mine) == 2 and all(len(h) == 64 for _, h in mine)
    params = con.execute("select distinct r.param_count from runs r join jobs j using (job_id)"
                         " where j.arch='mynets:small_cnn'").fetchall()
    assert params == [(4 * 9 + 4 + 8 + 4 * 14 * 14 * 10 + 10,)]  # conv, BN, linear
    assert "Nothing to run" in cli("run", "mine.py").output
    assert cli("report", "mine", "--format", "md").exit_code == 0
    assert "| mine | 2 |" in (workdir / "reports" / "mine" / "report.md").read_text()

    with open(workdir / "mynets.py", "a") as f:
        f.write("# edited: the source is the network's identity\n")
    again = cli("run", "mine.py", "--jobs", "2")
    assert again.exit_code == 0, again.output
    assert "(2 new)" in again.output and "finished: 2 complete" in again.output  # sk kept
    assert con.execute("select count(*) from runs").fetchone() == (6,)  # old results kept
    cells = con.execute("select count(*) from study_cells c join jobs j using (job_id) "
                        "where j.arch='mynets:small_cnn'").fetchone()
    assert cells == (2,)  # the study holds the new jobs only: old and new never mix
    status = json.loads(cli("status", "mine.py", "--json").output)
    assert status["total"] == {"COMPLETE": 4}


def test_a_user_network_trains_fused(workdir, cli):
    result = cli("run", "mine.py", "--jobs", "1", "--fuse", "2")
    assert result.exit_code == 0, result.output
    assert "in 2 fused group(s)" in result.output and "finished: 4 complete" in result.output


def test_progress_shows_running_jobs_with_their_epochs_and_one_cost_weighted_eta(capsys,
                                                                                 monkeypatch):
    from benchmark.cli.progress import Progress
    from benchmark.records import EpochMetrics, JobResult, JobStatus

    now = [0.0]
    monkeypatch.setenv("CNNBENCH_EPOCH_LINES_AFTER", "60")
    shown = Progress(tty=False, clock=lambda: now[0])
    shown.started(3, {"a": 1.0, "b": 1.0, "c": 2.0})
    shown.job_running("c", "S/c seed 0", 10)
    shown.job_running("a", "S/a seed 0", 4)
    assert shown.eta() == "?"  # nothing measured yet
    now[0] = 30.0
    shown.epoch("c", EpochMetrics(5, 0.5, 0.4, 91.25, 3.0))  # half of the costliest job
    # done 1.0 of 4.0 cost units in 30 s: 90 s to go, from the running job's epochs alone
    assert shown.eta() == "1m30s" and shown.progress_cost() == 1.0
    assert shown.status_line() == "[0/3 ETA 1m30s] S/c seed 0 epoch 5/10 | S/a seed 0 epoch 0/4"
    assert capsys.readouterr().out == ""  # young jobs print no epoch lines without a terminal
    now[0] = 61.0
    shown.epoch("c", EpochMetrics(6, 0.4, 0.3, 92.5, 3.0))
    assert capsys.readouterr().out == ("  S/c seed 0: epoch 6/10, train loss 0.4000, test acc "
                                       "92.50% (3.0s)\n")
    shown.finished(JobResult("a", JobStatus.COMPLETE, epochs=(EpochMetrics(4, .1, .1, 97.0, 1),),
                             wall_seconds=2.0, device="cpu"), "S/a seed 0")
    out = capsys.readouterr().out
    assert out.startswith("[1/3 ETA ") and "S/a seed 0" in out  # one line, one ETA
    assert "S/a seed 0" not in shown.status_line() and "S/c seed 0 epoch 6/10" in \
        shown.status_line()
    tty = Progress(tty=True, clock=lambda: now[0])
    tty.started(1, {"a": 1.0})
    tty.job_running("a", "S/a seed 0", 4)
    assert capsys.readouterr().out.endswith("\r\x1b[K[0/1 ETA ?] S/a seed 0 epoch 0/4")


def test_without_a_terminal_epochs_of_a_running_job_are_printed_as_they_happen(workdir):
    """A real run whose job waits, mid-training, until the test has read its epoch-1 line
    on the runner's output: the epoch reached the runner while the job ran."""
    import subprocess
    import sys
    import threading

    gate = workdir / "gate"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gate), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "gated.py", "--jobs",
                             "1", "--db", "r.sqlite"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "G/gated seed 0: epoch 1/3" in line:
                gate.touch()  # the job may go on now

    reader = threading.Thread(target=read)
    reader.start()
    code = proc.wait(timeout=300)
    reader.join(timeout=60)
    proc.stdout.close()
    output = "".join(lines)
    assert code == 0 and gate.exists(), output
    epoch1 = next(i for i, x in enumerate(lines) if "G/gated seed 0: epoch 1/3" in x)
    done = next(i for i, x in enumerate(lines) if "G/gated seed 0: COMPLETE" in x)
    assert epoch1 < done
    assert "train loss" in lines[epoch1] and "test acc" in lines[epoch1]


def test_status_watch_refreshes_until_the_grid_is_done(workdir, cli):
    import subprocess
    import sys

    assert cli("run", "tiny.py", "--db", "r.sqlite").exit_code == 0
    done = cli("status", "tiny.py", "--db", "r.sqlite", "--watch", "0.5")
    assert done.exit_code == 0 and done.output.count("total") == 1  # done: one table, exit
    # A grid still to run: watch keeps refreshing while a runner works it, and stops when
    # the last job is stored.
    runner = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "slow.py", "--db",
                               "r.sqlite"], cwd=workdir, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    watch = subprocess.run([sys.executable, "-m", "benchmark", "status", "slow.py", "--db",
                            "r.sqlite", "--watch", "0.5"], cwd=workdir, capture_output=True,
                           text=True, timeout=600)
    assert runner.wait(timeout=600) == 0
    assert watch.returncode == 0, watch.stderr
    tables = watch.stdout.split("slow at ")[1:]
    assert tables and "PENDING" not in tables[-1] and "RUNNING" not in tables[-1]
    assert tables[-1].rstrip().splitlines()[-1].split()[1:] == ["8"]  # total: 8 COMPLETE


def test_seeds_take_ranges():
    import click

    from benchmark.cli.common import parse_seeds as _parse_seeds

    assert _parse_seeds("0-3") == [0, 1, 2, 3] and _parse_seeds("0-1,5,7-8") == [0, 1, 5, 7, 8]
    for bad in ("3-1", "a-b", "0-2,2", "-1"):
        with pytest.raises(click.BadParameter):
            _parse_seeds(bad)


@pytest.mark.parametrize("how", [["--jobs", "2"], ["--dry-run"]])
def test_nothing_of_a_run_outlives_the_command(workdir, how):
    """`cnnbench run` (training, or a dry run's calibration through joblib) in a process
    group of its own: once it has returned, no process of that group is left (no resource
    tracker, no worker, not even an exited one that was never waited for), and its exit
    printed no traceback."""
    import subprocess
    import sys

    run = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "tiny.py", *how],
                           cwd=workdir, start_new_session=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0 and "Traceback" not in output, output
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
            state, _, group = rest.rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(group) == run.pid:
            left.append(f"{pid} ({state}): {(stat.parent / 'cmdline').read_bytes()!r}")
    assert left == []
