"""kill -9 of a real `cnnbench run` mid-grid, then a rerun: nothing lost, nothing twice."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest


def _count(db, sql):
    try:
        return sqlite3.connect(db, timeout=30).execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the database is not created yet
        return 0


def _start_and_interrupt(workdir, cmd, sig):
    """Start `cmd`, wait until two jobs are stored, then send `sig` to its process group."""
    db = workdir / "r.sqlite"
    proc = subprocess.Popen(cmd, cwd=workdir, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while _count(db, "select count(*) from runs") < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.2)
    os.killpg(proc.pid, sig)  # the runner and its workers, as a terminal's Ctrl-C does
    code = proc.wait(timeout=120)
    output = proc.stdout.read().decode()
    proc.stdout.close()
    return code, output


def _cmd(db):
    return [sys.executable, "-m", "benchmark", "run", "slow.py", "--jobs", "2", "--db", str(db)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_kill_9_mid_grid_then_resume_completes_every_job_exactly_once(workdir, monkeypatch):
    db = workdir / "r.sqlite"
    cmd = _cmd(db)
    tmp = workdir / "tmp"  # the runs' own temporary folder: what they leave there is theirs
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    _start_and_interrupt(workdir, cmd, signal.SIGKILL)  # no cleanup at all
    done_before = _count(db, "select count(*) from runs where status='COMPLETE'")
    assert 2 <= done_before < 8, "kill came too late to test resuming"
    assert _count(db, "select count(*) from jobs where status='RUNNING'") > 0
    assert len(list(tmp.glob("cnnbench-locks-*"))) == 1  # the killed run could not remove it

    rerun = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert not list(tmp.glob("cnnbench-locks-*")), "a run left its folder, or a dead one's"
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "reclaimed" in rerun.stdout
    assert f"training {8 - done_before} job(s)" in rerun.stdout
    assert _count(db, "select count(*) from jobs where status='COMPLETE'") == 8
    # every job has exactly one COMPLETE run: nothing lost, nothing trained twice
    per_job = sqlite3.connect(db).execute(
        "select count(*) from runs where status='COMPLETE' group by job_id").fetchall()
    assert per_job == [(1,)] * 8


def _wait(proc, condition, what: str, timeout: float = 120) -> None:
    """Poll until `condition()` holds (an observable state, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: " + proc.stdout.read().decode())
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _training_workers(runner_pid: int) -> set[int]:
    """Loky worker processes of `runner_pid` that have loaded torch (so are training)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/maps") as f:
                torch_loaded = "libtorch_cpu" in f.read()
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
        if ppid == runner_pid and b"popen_loky_posix" in cmdline and torch_loaded:
            found.add(int(entry))
    return found


def _longer(workdir):
    db = workdir / "r.sqlite"
    cmd = [sys.executable, "-m", "benchmark", "run", "longer.py", "--jobs", "2", "--db", str(db)]
    return db, subprocess.Popen(cmd, cwd=workdir, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Ctrl-C as at a terminal: a suite started in the background (`cmd &`, nohup) passes
    SIGINT ignored to its children, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_twice_fails_its_job_while_every_other_job_completes_once(workdir):
    db, proc = _longer(workdir)
    first: set[int] = set()
    _wait(proc, lambda: len(first.update(_training_workers(proc.pid)) or first) == 2,
          "two workers training")
    victim = min(first)
    os.kill(victim, signal.SIGKILL)  # what the kernel's OOM killer does
    retry: set[int] = set()
    _wait(proc, lambda: retry.update(_training_workers(proc.pid) - first) or retry,
          "the job's retry on a fresh worker")
    os.kill(retry.pop(), signal.SIGKILL)  # the retry dies too
    code = proc.wait(timeout=300)
    output = proc.stdout.read().decode()
    proc.stdout.close()
    assert code == 1, output
    assert "Traceback" not in output
    assert "worker died (SIGKILL)" in output and "retrying on a fresh worker" in output
    con = sqlite3.connect(db)
    assert dict(con.execute("select status, count(*) from jobs group by status")) == {
        "COMPLETE": 3, "FAILED": 1}
    (error,) = con.execute("select error from runs where status='FAILED'").fetchone()
    assert error.startswith("worker died: SIGKILL on 2 workers")
    # every other job ran to completion exactly once: the dying worker took nothing else down
    assert con.execute("select count(*) from runs where status='COMPLETE' group by job_id"
                       ).fetchall() == [(1,)] * 3
    assert con.execute("select count(*) from runs").fetchone() == (4,)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_ctrl_c_returns_running_jobs_to_pending_and_says_how_to_resume(workdir):
    db, proc = _longer(workdir)  # jobs of several seconds: still running when Ctrl-C comes
    _wait(proc, lambda: _count(db, "select count(*) from jobs where status='RUNNING'") > 0,
          "a job RUNNING in the database")
    os.killpg(proc.pid, signal.SIGINT)  # the runner and its workers, as a terminal does
    code = proc.wait(timeout=120)
    output = proc.stdout.read().decode()
    proc.stdout.close()
    # 130, or death by the SIGINT itself, which a shell reports as 130 too: the runner may
    # be caught by the signal a second time at exit, through a worker it was spawning
    # (the whole process group gets it), after handing every job back
    assert code in (130, -signal.SIGINT), output
    assert "run the same command again to resume" in output
    assert "Traceback" not in output
    assert _count(db, "select count(*) from jobs where status='RUNNING'") == 0
    done = _count(db, "select count(*) from jobs where status='COMPLETE'")
    assert done + _count(db, "select count(*) from jobs where status='PENDING'") == 4
    assert _count(db, "select count(*) from runs") == done  # no half-written attempt


LONG_JOB = '''
from benchmark import Cell, Section, Study, TrainConfig

def study():
    return Study(name="long", baseline=TrainConfig(arch="base", width=0.3, epochs=60,
                                                   train_size=320, dataset="idx"),
                 sections=[Section("L", [Cell("one")])])
'''


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_kill_9_mid_job_resumes_from_the_last_epoch_checkpoint(workdir):
    import torch

    (workdir / "long.py").write_text(LONG_JOB)
    db, ck = workdir / "r.sqlite", workdir / "ck"
    cmd = [sys.executable, "-m", "benchmark", "run", "long.py", "--jobs", "1", "--db", str(db),
           "--checkpoints", str(ck)]
    proc = subprocess.Popen(cmd, cwd=workdir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, saved = time.monotonic() + 120, None
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(ck.glob("*.pt")) if ck.exists() else []
        if files:
            try:
                saved = torch.load(files[0], weights_only=True)["epochs"]
            except Exception:  # caught mid-rename: try again
                saved = None
            if saved and len(saved) >= 3:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert saved and 3 <= len(saved) < 60, "the kill came too late to test resuming"

    rerun = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from runs where status='COMPLETE'").fetchone() == (1,)
    epochs = con.execute("select epoch, seconds from epochs order by epoch").fetchall()
    assert [e for e, _ in epochs] == list(range(1, 61))
    # the first epochs are the checkpointed ones, not retrained: same timings to the bit
    assert [s for _, s in epochs[:3]] == [e["seconds"] for e in saved[:3]]
    assert list(ck.glob("*")) == []  # removed with the finished job
