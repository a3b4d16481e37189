"""A database restart in the middle of a grid: the run waits for the server, keeps the
results that finish while it is down, writes each once when it is back, and ends as if
nothing happened. On a real PostgreSQL server (Debian's package), stopped as an
administrator's restart does and started again 25 s later."""

import os
import subprocess
import sys
import threading
import time

import pytest
from pgserver import PostgresServer, bindir
from sqlalchemy import create_engine, text

REQUIRED = bool(os.environ.get("CI"))
OUTAGE_SECONDS = 25  # the 20-30 s: a restart or failover, well inside the minute


@pytest.fixture
def server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("psycopg is not installed")
    if bindir() is None and not REQUIRED:
        pytest.skip("PostgreSQL server binaries not installed")
    pg = PostgresServer().start()  # its own server: this test stops it
    yield pg
    pg.stop()


def _rows(url, sql):
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return con.execute(text(sql)).all()
    finally:
        engine.dispose()


def _read_lines(proc, lines: list[str], seen: dict[str, threading.Event]) -> None:
    for line in proc.stdout:
        lines.append(line)
        for marker, event in seen.items():
            if marker in line:
                event.set()
        if sum(": epoch 1/3" in line for line in lines) >= 2:
            seen["two jobs running"].set()


def test_a_database_restart_mid_grid_is_ridden_out(server, workdir, tmp_path):
    url = server.url("outage")
    gate = tmp_path / "gate"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gate), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    # Four gated jobs on two workers: the first two stop after epoch 1 until the gate opens.
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark", "run", "gated.py", "--seeds", "0,1,2,3",
         "--jobs", "2", "--db", url], cwd=workdir, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    seen = {"two jobs running": threading.Event(), "lost the database": threading.Event(),
            "is back after": threading.Event()}
    reader = threading.Thread(target=_read_lines, args=(proc, lines, seen), daemon=True)
    reader.start()
    try:
        assert seen["two jobs running"].wait(180), "".join(lines)  # both held at the gate
        server.halt()  # every connection is terminated, new ones are refused
        gate.touch()  # the two running jobs finish, and the next two run, while it is down
        down_at = time.monotonic()
        assert seen["lost the database"].wait(60), "".join(lines)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        assert proc.poll() is None, "".join(lines)  # still waiting, not stopped
        server.resume()
        assert proc.wait(timeout=300) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
        proc.stdout.close()
    out = "".join(lines)
    assert seen["is back after"].is_set(), out
    assert "cannot write results" not in out, out
    assert "finished: 4 complete" in out, out
    assert _rows(url, "select status, count(*) from jobs group by status") == [("COMPLETE", 4)]
    per_job = _rows(url, "select job_id, count(*), min(status) from runs group by job_id")
    assert len(per_job) == 4 and {(n, s) for _, n, s in per_job} == {(1, "COMPLETE")}, per_job
