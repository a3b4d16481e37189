"""`--backend slurm` on a real one-node Slurm (Debian's slurm-wlm and munge, brought up by
tests/slurm/up.sh): a study trains in Slurm jobs through dask-jobqueue, every run row
carries its Slurm job id, and a worker's Slurm job cancelled mid-grid (`scancel`, as a
preemption or a lost node) costs nothing: its job resumes from its checkpoint on another
worker and every job ends COMPLETE exactly once.

Needs root (Slurm's daemons); on a machine without Slurm these tests skip, under CI they
fail."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Background, epochs_reported

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = bool(os.environ.get("CI"))


@pytest.fixture(scope="module")
def slurm():
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch") if not shutil.which(c)]
    why = (f"Slurm is not installed ({', '.join(missing)}): apt-get install slurm-wlm munge"
           if missing else "Slurm's daemons need root" if os.geteuid() != 0 else None)
    if why:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)
    pytest.importorskip("dask_jobqueue")
    was_up = subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    up = subprocess.run(["bash", str(ROOT / "tests/slurm/up.sh")], capture_output=True,
                        text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    if not was_up:  # leave a Slurm that was running before as it was
        subprocess.run(["bash", str(ROOT / "tests/slurm/down.sh")], capture_output=True,
                       timeout=300)


def _queue() -> list[tuple[str, str]]:
    """(job id, state) of the cnnbench workers' Slurm jobs in the queue."""
    out = subprocess.run(["squeue", "--noheader", "--me", "--name=dask-worker",
                          "--format=%i %t"], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines()]


def _gated(workdir: Path, tmp_path: Path, *args: str) -> tuple[Background, Path]:
    """`cnnbench run gated.py ARGS` in the background, and the gate file that holds its
    jobs after epoch 1 until it exists."""
    gate = tmp_path / "gate"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gate), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    return Background([sys.executable, "-m", "benchmark", "run", "gated.py", *args],
                      cwd=workdir, env=env), gate


def test_a_study_on_slurm_survives_a_cancelled_worker(slurm, workdir, tmp_path):
    import torch

    db, checkpoints = tmp_path / "slurm.sqlite", tmp_path / "ck"
    # Three gated jobs on two Slurm jobs of one slot: the first two hold after epoch 1.
    run, gate = _gated(workdir, tmp_path, "--seeds", "0,1,2", "--backend", "slurm", "--jobs",
                       "2", "--walltime", "00:15:00", "--memory", "2GB", "--checkpoints",
                       str(checkpoints), "--db", str(db))
    with run:
        assert run.wait_for(epochs_reported(2), 240), run.output
        saved = {p.name.split("-")[0]: torch.load(p, weights_only=True)["epochs"]
                 for p in checkpoints.glob("*.pt")}
        assert len(saved) == 2 and all(len(e) == 1 for e in saved.values()), saved
        running = [job for job, state in _queue() if state == "R"]
        assert len(running) == 2, _queue()
        cancelled = running[0]
        subprocess.run(["scancel", cancelled], check=True)
        deadline = time.monotonic() + 60
        while cancelled in dict(_queue()) and time.monotonic() < deadline:
            time.sleep(0.2)  # wait for Slurm to end it: the worker is gone mid-job
        while not set(dict(_queue())) - set(running) and time.monotonic() < deadline:
            time.sleep(0.2)  # and for the run to replace it with a new Slurm job
        assert len(_queue()) == 2 and cancelled not in dict(_queue()), _queue()
        gate.touch()
        assert run.proc.wait(timeout=300) == 0, run.output
    out = run.output
    assert "Slurm: 2 job(s) of 00:15:00" in out and "finished: 3 complete" in out, out
    con = sqlite3.connect(db)
    runs = con.execute("select j.job_key, r.status, r.slurm_job_id, r.host from runs r "
                       "join jobs j using (job_id)").fetchall()
    assert sorted(status for _, status, _, _ in runs) == ["COMPLETE"] * 3, runs  # once each
    assert len({key for key, *_ in runs}) == 3, runs
    assert all(job and job.isdigit() for _, _, job, _ in runs), runs
    assert all(host for *_, host in runs), runs
    assert cancelled not in {job for _, _, job, _ in runs}, (cancelled, runs)
    # Both held jobs resumed or went on from their checkpoint: epoch 1 is the saved one,
    # to the bit (a job started over would have trained it again), for the cut one too.
    for key, epochs in saved.items():
        first = con.execute("select e.seconds from epochs e join runs r using (run_id) "
                            "join jobs j using (job_id) where j.job_key like ? and "
                            "e.epoch = 1", (key + "%",)).fetchall()
        assert first == [(epochs[0]["seconds"],)], (key, first, epochs)
    assert list(checkpoints.glob("*")) == []
    con.close()
    # The report and load_results show where each run trained.
    from benchmark import load_results

    jobs, _ = load_results(db, "gated")
    assert jobs["slurm_job_id"].notna().all(), jobs
    report = subprocess.run([sys.executable, "-m", "benchmark", "report", "gated.py",
                             "--db", str(db), "--out", str(tmp_path / "rep")], cwd=workdir,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    html = next((tmp_path / "rep").rglob("index.html")).read_text()
    assert "Slurm jobs" in html, html[:2000]


def test_a_partition_slurm_refuses_is_an_error_before_the_grid_is_written(slurm, workdir,
                                                                          cli):
    result = cli("run", "tiny.py", "--backend", "slurm", "--partition", "nosuchpartition",
                 "--db", "never.sqlite")
    assert result.exit_code == 2, result.output
    assert "Slurm refuses the worker job" in result.output, result.output
    assert "nosuchpartition" in result.output.lower() or "partition" in result.output.lower()
    con = sqlite3.connect(workdir / "never.sqlite")  # opened, but no grid was written
    assert con.execute("select count(*) from studies").fetchone() == (0,)
    assert con.execute("select count(*) from jobs").fetchone() == (0,)
    con.close()


def test_a_job_stops_at_an_epoch_end_when_its_worker_retires_first(slurm, workdir, tmp_path):
    """Slurm jobs of 2 minutes: workers retire after 84 s (± 6). The job's second epoch is
    held at the gate for 35 s, so at its end the next epoch (reckoned 1.5 times as long)
    would outlast the worker: the job stops there, checkpointed, and finishes on the
    Slurm job that replaces the retiring one. Without the stop it would finish at once
    on the first worker."""
    import torch

    db, checkpoints = tmp_path / "r.sqlite", tmp_path / "ck"
    run, gate = _gated(workdir, tmp_path, "--backend", "slurm", "--walltime", "2", "--memory",
                       "2GB", "--checkpoints", str(checkpoints), "--db", str(db))
    with run:
        assert run.wait_for(epochs_reported(1), 240), run.output
        first = [job for job, state in _queue() if state == "R"]
        assert len(first) == 1, _queue()
        time.sleep(35)  # the length of epoch 2 in this scenario, not a wait for a state
        saved = [torch.load(p, weights_only=True)["epochs"] for p in checkpoints.glob("*.pt")]
        gate.touch()
        assert run.proc.wait(timeout=300) == 0, run.output
    out = run.output
    con = sqlite3.connect(db)
    runs = con.execute("select run_id, status, slurm_job_id from runs").fetchall()
    assert len(runs) == 1 and runs[0][1] == "COMPLETE", runs
    assert runs[0][2] != first[0], (first, runs, out)  # finished on the replacement
    epochs = con.execute("select epoch, seconds from epochs order by epoch").fetchall()
    assert [e for e, _ in epochs] == [1, 2, 3], epochs
    assert epochs[0][1] == saved[0][0]["seconds"], (epochs, saved)  # resumed, not retrained
    assert epochs[1][1] > 30, epochs  # epoch 2 (held at the gate) kept, not trained again
    con.close()


def test_jobs_are_claimed_only_when_a_slurm_worker_can_start_them(slurm, workdir, tmp_path):
    """Two Slurm jobs of 2 CPUs on a 2-CPU node: one runs, one waits in the queue. The run
    claims (marks RUNNING) only the jobs the running worker's 2 slots take, not 4: the
    others stay PENDING for any runner, and `status` shows what really trains."""
    db = tmp_path / "q.sqlite"
    run, gate = _gated(workdir, tmp_path, "--seeds", "0,1,2,3,4,5", "--backend", "slurm",
                       "--jobs", "2", "--cpus-per-job", "2", "--memory", "2GB", "--db", str(db))
    with run:
        assert run.wait_for(epochs_reported(2), 240), run.output  # two jobs hold at the gate
        assert sorted(state for _, state in _queue()) == ["PD", "R"], _queue()
        con = sqlite3.connect(db)
        states = dict(con.execute("select status, count(*) from jobs group by status"))
        con.close()
        assert states == {"RUNNING": 2, "PENDING": 4}, states
        gate.touch()
        assert run.proc.wait(timeout=300) == 0, run.output
    assert "finished: 6 complete" in run.output
