"""A database restart in the middle of a grid: the run waits for the server, keeps the
results that finish while it is down, writes each once when it is back, and ends as if
nothing happened. On a real PostgreSQL server (Debian's package), stopped as an
administrator's restart does and started again 25 s later."""

import os
import sys
import time

import pytest
from conftest import Background, epochs_reported
from pgserver import query, require

OUTAGE_SECONDS = 25  # the 20-30 s: a restart or failover, well inside the minute


@pytest.fixture
def server():
    pg = require().start()  # its own server: this test stops it
    yield pg
    pg.stop()


def test_a_database_restart_mid_grid_is_ridden_out(server, workdir, tmp_path):
    url = server.url("outage")
    gate = tmp_path / "gate"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gate), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    # Four gated jobs on two workers: the first two stop after epoch 1 until the gate opens.
    with Background([sys.executable, "-m", "benchmark", "run", "gated.py", "--seeds",
                     "0,1,2,3", "--jobs", "2", "--db", url], cwd=workdir, env=env) as run:
        assert run.wait_for(epochs_reported(2), 180), run.output  # both held at the gate
        server.halt()  # every connection is terminated, new ones are refused
        gate.touch()  # the two running jobs finish, and the next two run, while it is down
        down_at = time.monotonic()
        assert run.said("lost the database", 60), run.output
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        assert run.proc.poll() is None, run.output  # still waiting, not stopped
        server.resume()
        assert run.proc.wait(timeout=300) == 0, run.output
    out = run.output
    assert "is back after" in out, out
    assert "cannot write results" not in out, out
    assert "finished: 4 complete" in out, out
    assert query(url, "select status, count(*) from jobs group by status") == [("COMPLETE", 4)]
    per_job = query(url, "select job_id, count(*), min(status) from runs group by job_id")
    assert len(per_job) == 4 and {(n, s) for _, n, s in per_job} == {(1, "COMPLETE")}, per_job


def test_results_that_finish_past_the_retry_bound_are_kept_and_recorded_once(server, workdir,
                                                                              tmp_path):
    """The database stays away longer than --db-retry while two jobs finish: no job starts
    after that, the run stops (exit 1) saying where the two results are kept, and the next
    run, the server back, records them first and trains only the two jobs never run."""
    url = server.url("spooled")
    gate = tmp_path / "gate"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gate), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    cmd = [sys.executable, "-m", "benchmark", "run", "gated.py", "--seeds", "0,1,2,3",
           "--jobs", "2", "--db", url, "--db-retry", "3"]
    with Background(cmd, cwd=workdir, env=env) as run:
        assert run.wait_for(epochs_reported(2), 180), run.output  # both held at the gate
        server.halt()
        gate.touch()  # the two running jobs finish while it is down, past the retry bound
        assert run.proc.wait(timeout=300) == 1, run.output
    out = run.output
    assert "no job starts now" in out, out
    assert "2 finished result(s) are kept in" in out and "Traceback" not in out, out
    server.resume()
    again = Background(cmd, cwd=workdir, env=env)
    with again:
        assert again.proc.wait(timeout=300) == 0, again.output
    assert "recorded 2 result(s) kept while the database was away" in again.output
    assert "training 2 job(s)" in again.output, again.output  # the two kept ones: not again
    assert query(url, "select status, count(*) from jobs group by status") == [("COMPLETE", 4)]
    per_job = query(url, "select job_id, count(*), min(status) from runs group by job_id")
    assert len(per_job) == 4 and {(n, s) for _, n, s in per_job} == {(1, "COMPLETE")}, per_job
