"""The backend interface: choosing a backend by name, the options each owns, and the Slurm
backend's settings as they reach the worker job script (no Slurm needed here: the job
script is dask-jobqueue's own; test_slurm.py runs it on a real Slurm)."""

import os
import signal
import sys

import pytest

from benchmark import backends
from benchmark.backends import DeviceError
from benchmark.backends.slurm import SlurmBackend, retirement, walltime_seconds


def test_each_backend_takes_its_own_options_and_names_the_owner_of_the_others():
    assert backends.create("loky", "cpu", 3).slots() == ["cpu"] * 3
    assert backends.create("dask", "cpu", 2, scheduler=None).slots() == ["cpu"] * 2
    assert backends.create("dask", scheduler="tcp://h:1").scheduler == "tcp://h:1"
    with pytest.raises(DeviceError, match="--scheduler needs --backend dask"):
        backends.create("slurm", scheduler="tcp://h:1")
    with pytest.raises(DeviceError, match="--cpus-per-job needs --backend slurm"):
        backends.create("loky", cpus_per_job=4)
    with pytest.raises(DeviceError, match="unknown backend 'pbs'"):
        backends.create("pbs")
    # unset options (None, empty) are no one's
    assert backends.create("loky", partition=None, sbatch=()).name == "loky"
    assert {b.name for b in map(backends.create, backends.NAMES)} == set(backends.NAMES)
    assert [backends.create(n).local for n in backends.NAMES] == [True, False, False]


def test_slurm_slots_are_per_job_times_jobs():
    assert SlurmBackend().slots() == ["cpu"]
    assert SlurmBackend("cpu", 3, cpus_per_job=2).slots() == ["cpu"] * 6
    assert SlurmBackend("cpux4", 2).slots() == ["cpu"] * 8
    assert SlurmBackend("cuda:0x4", 2).slots() == ["cuda:0"] * 8
    assert SlurmBackend("cuda", 1).slots() == ["cuda:0"]  # no GPU needed on the login node
    for bad in ("cuda:1", "cpu,cuda", "tpu"):
        with pytest.raises(DeviceError, match="with --backend slurm"):
            SlurmBackend(bad)


@pytest.mark.parametrize("text, seconds", [
    ("90", 5400), ("30:15", 1815), ("01:30:00", 5400), ("2-00", 172800),
    ("1-12:30", 131400), ("1-00:00:10", 86410)])
def test_slurm_time_limits(text, seconds):
    assert walltime_seconds(text) == seconds


def test_a_bad_time_limit_is_refused_when_the_backend_is_made():
    with pytest.raises(DeviceError, match="bad wall time '2h'"):
        SlurmBackend(walltime="2h")


def test_workers_retire_a_margin_before_the_wall_time_staggered():
    for walltime in (120, 1800, 4 * 3600, 48 * 3600):
        lifetime, stagger = retirement(walltime)
        assert lifetime + stagger < walltime  # the latest leaves before Slurm kills it
        assert walltime - (lifetime + stagger) >= min(60, walltime // 4)
        assert stagger > 0
    assert retirement(1800) == (1800 - 90 - 90, 90)


def test_the_slurm_options_reach_the_job_script():
    pytest.importorskip("dask_jobqueue")
    from dask_jobqueue.slurm import SLURMJob

    backend = SlurmBackend("cuda:0x2", 3, partition="gpu", account="lab", walltime="02:00:00",
                           memory="16GB", cpus_per_job=4, gpus_per_job=1,
                           sbatch=("--qos=short", "--constraint=a100"))
    kwargs = backend.cluster_kwargs("02:00:00")
    script = SLURMJob(scheduler="tcp://127.0.0.1:1", name="w", **{
        k: v for k, v in kwargs.items() if k != "scheduler_options"}).job_script()
    for line in ("#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH -t 02:00:00",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --gres=gpu:1", "#SBATCH --qos=short",
                 "#SBATCH --constraint=a100"):
        assert line in script, script
    lifetime, stagger = retirement(7200)
    assert f"--lifetime {lifetime}s --lifetime-stagger {stagger}s" in script, script
    assert "--nthreads 2" in script, script  # one thread per slot of the job
    assert "#SBATCH --mem=15G" in script or "#SBATCH --mem=16G" in script, script


def test_a_dry_run_for_slurm_gpus_from_a_login_node_without_one(workdir, cli, monkeypatch):
    monkeypatch.setattr(backends.base, "visible_gpus", lambda: 0)
    result = cli("run", "tiny.py", "--backend", "slurm", "--devices", "cuda", "--jobs", "2",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would train on 2 slot(s): cuda:0, cuda:0" in result.output
    assert "no time estimate: the slots are on GPUs, and this machine has none" in result.output


def test_a_pool_interrupted_while_starting_a_worker_still_closes():
    """Ctrl-C can land while loky starts an executor's manager thread; closing the pool
    then met "cannot join thread before it is started", a RuntimeError that hid the
    interrupt (a traceback and exit 1 instead of the resume message, about one full-suite
    run in ten of the Ctrl-C test). The state is made here directly."""
    import threading

    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    from benchmark.backends.local import LocalPool

    pool = LocalPool(["cpu"])
    executor = ProcessPoolExecutor(max_workers=1)
    executor._executor_manager_thread = threading.Thread(target=lambda: None)  # never started
    pool._executors[0] = executor
    pool.close(kill=False)  # no RuntimeError
    assert pool._executors[0] is None


def _blocked_signals() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        return int(next(line for line in f if line.startswith("SigBlk")).split()[1], 16)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_workers_start_with_ctrl_c_blocked():
    """A Ctrl-C reaches the whole process group; the runner handles it (hands the jobs
    back, stops the workers). A worker that saw it while Python started up printed a
    traceback, so workers start with SIGINT blocked: the first worker too (starting loky's
    resource trackers unblocked it again)."""
    from benchmark.backends.local import LocalPool

    pool = LocalPool(["cpu", "cpu"])
    try:
        masks = [pool.submit(slot, _blocked_signals).result(timeout=60) for slot in (0, 1)]
    finally:
        pool.close(kill=True)
    assert all(mask & (1 << (signal.SIGINT - 1)) for mask in masks), [hex(m) for m in masks]
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the runner's is as it was


def test_a_pool_folder_goes_once_its_owner_is_gone_never_before(tmp_path, monkeypatch):
    """A pool's folder is swept when its owner lock can be taken: its runner exited, however
    it ended (kill -9 included); never while the pool is open, whatever pids say."""
    import tempfile
    from pathlib import Path

    from benchmark.backends import local

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder, owner = local.lock_dir()
    local.sweep_locks()
    assert Path(folder).is_dir()  # held
    os.close(owner)  # as the kernel does when its process dies
    local.sweep_locks()
    assert not Path(folder).exists()
