import os

import pytest
import torch

from benchmark import TrainConfig
from benchmark.backends import DeviceError, parse_devices
from benchmark.execute import Task, execute, fuse
from benchmark.records import JobResult, JobStatus


def test_cpu_slots_default_to_one_per_core():
    assert parse_devices("cpu") == ["cpu"] * (os.cpu_count() or 1)
    assert parse_devices("cpu", jobs=3) == ["cpu"] * 3
    assert parse_devices("cpux2", jobs=5) == ["cpu"] * 2


def test_cuda_slots_from_specification():
    two = lambda: 2  # noqa: E731 - two visible GPUs
    assert parse_devices("cuda", cuda_count=two) == ["cuda:0", "cuda:1"]
    assert parse_devices("cuda:0x4", cuda_count=two) == ["cuda:0"] * 4
    assert parse_devices("cuda:0,cuda:1x2", cuda_count=two) == ["cuda:0", "cuda:1", "cuda:1"]
    assert parse_devices("cudax3", cuda_count=two) == ["cuda:0"] * 3 + ["cuda:1"] * 3


@pytest.mark.parametrize("spec,message", [
    ("gpu", "bad device 'gpu'"),
    ("cuda:0x0", "needs at least one slot"),
    ("cuda:2", r"cuda:2 does not exist: 2 GPU\(s\) visible"),
])
def test_bad_device_specifications(spec, message):
    with pytest.raises(DeviceError, match=message):
        parse_devices(spec, cuda_count=lambda: 2)


def test_cuda_requested_without_gpu_says_use_cpu():
    with pytest.raises(DeviceError, match="no GPU is visible here: use --devices cpu"):
        parse_devices("cuda:0", cuda_count=lambda: 0)


def _pid_and_device(tasks, device, lock_dir, threads, eval_every, checkpoints, feed=None):
    """A worker function that trains nothing: which process and device ran the group."""
    import time

    time.sleep(0.5)  # keep the slot busy so the next group needs another one
    return [JobResult(key=t.key, status=JobStatus.COMPLETE, device=device,
                      host=str(os.getpid())) for t in tasks]


def test_each_slot_has_its_own_worker_process_and_device():
    tasks = [Task(f"k{i}", TrainConfig(seed=i), "d") for i in range(3)]
    got = list(execute([[t] for t in tasks], ["cuda:0", "cuda:0", "cuda:1"],
                       work=_pid_and_device))
    assert len({r.host for r in got}) == 3
    assert sorted(r.device for r in got) == ["cuda:0", "cuda:0", "cuda:1"]


def _dies_on(kill: set, marker_dir: str, times: int = 99):
    """A worker function that kills its own process (SIGKILL, as the OOM killer does) on
    its first `times` attempts at the keys in `kill`, counting every attempt in
    `marker_dir`, and completes the rest."""
    def work(tasks, device, lock_dir, threads, eval_every, checkpoints, feed=None):
        import signal
        import time

        for t in tasks:
            with open(os.path.join(marker_dir, t.key), "a") as f:
                f.write(f"{os.getpid()}\n")
            with open(os.path.join(marker_dir, t.key)) as f:
                attempt = len(f.read().split())
            if t.key in kill and attempt <= times:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.2)
        return [JobResult(key=t.key, status=JobStatus.COMPLETE, device=device,
                          host=str(os.getpid())) for t in tasks]
    return work


def test_a_dying_worker_fails_only_its_own_job_after_one_retry(tmp_path):
    tasks = [Task(f"k{i}", TrainConfig(seed=i), "d") for i in range(6)]
    notes = []
    results = list(execute([[t] for t in tasks], ["cpu", "cpu"], notify=notes.append,
                           work=_dies_on({"k1"}, str(tmp_path))))
    by_key = {r.key: r for r in results}
    assert sorted(by_key) == [t.key for t in tasks] and len(results) == 6  # each exactly once
    assert by_key["k1"].status == JobStatus.FAILED
    assert "worker died: SIGKILL" in by_key["k1"].error
    assert {r.status for k, r in by_key.items() if k != "k1"} == {JobStatus.COMPLETE}
    tries = (tmp_path / "k1").read_text().split()
    assert len(tries) == 2 and tries[0] != tries[1]  # retried once, on a fresh process
    for t in tasks[:1] + tasks[2:]:  # the others ran once each
        assert len((tmp_path / t.key).read_text().split()) == 1
    assert any("retrying on a fresh worker" in n for n in notes)
    assert any("recorded FAILED" in n for n in notes)


def test_a_job_whose_worker_died_once_completes_on_its_retry(tmp_path):
    tasks = [Task(f"k{i}", TrainConfig(seed=i), "d") for i in range(3)]
    results = list(execute([[t] for t in tasks], ["cpu", "cpu"],
                           work=_dies_on({"k0"}, str(tmp_path), times=1)))
    assert sorted(r.key for r in results) == ["k0", "k1", "k2"]
    assert {r.status for r in results} == {JobStatus.COMPLETE}
    assert len((tmp_path / "k0").read_text().split()) == 2


def test_a_dask_worker_that_dies_fails_its_job_while_the_others_finish(tmp_path):
    pytest.importorskip("distributed")
    from benchmark.backends.dask import DaskBackend, dask_client

    tasks = [Task(f"k{i}", TrainConfig(seed=i), "d") for i in range(4)]
    with dask_client(None, 2):
        results = list(execute([[t] for t in tasks], ["cpu"], backend=DaskBackend(),
                               work=_dies_on({"k2"}, str(tmp_path))))
    by_key = {r.key: r for r in results}
    assert sorted(by_key) == ["k0", "k1", "k2", "k3"] and len(results) == 4
    assert by_key["k2"].status == JobStatus.FAILED
    assert "worker died: Dask reported a killed worker" in by_key["k2"].error
    assert {by_key[k].status for k in ("k0", "k1", "k3")} == {JobStatus.COMPLETE}
    assert len((tmp_path / "k2").read_text().split()) == 2  # the scheduler retried it once


def test_execute_streams_results_and_honours_claims(tmp_path):
    from conftest import make_idx_dir

    data_dir = str(make_idx_dir(tmp_path / "idx", 64, 50))
    configs = [TrainConfig(arch="sk", width=0.2, epochs=1, train_size=64, seed=s)
               for s in range(3)]
    tasks = [Task(c.key(), c, data_dir) for c in configs]
    refused = tasks[1].key
    results = list(execute([[t] for t in tasks], ["cpu"], claim=lambda t: t.key != refused))
    assert sorted(r.key for r in results) == sorted([tasks[0].key, tasks[2].key])
    assert all(r.status.value == "COMPLETE" and r.device == "cpu" for r in results)
    assert all(r.code_version and r.versions["torch"] for r in results)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_jobs_run_on_the_gpu_with_several_slots(tmp_path):
    from conftest import make_idx_dir

    data_dir = str(make_idx_dir(tmp_path / "idx", 256, 100))
    configs = [TrainConfig(arch="sk", width=0.2, epochs=1, seed=s) for s in range(4)]
    tasks = [Task(c.key(), c, data_dir) for c in configs]
    results = list(execute(fuse(tasks, 1), parse_devices("cuda:0x2")))
    assert {r.status.value for r in results} == {"COMPLETE"}
    assert {r.device for r in results} == {"cuda:0"}


def test_fuse_groups_jobs_differing_only_in_seed_and_slice_keeping_order():
    def task(**fields):
        c = TrainConfig(arch="sk", width=0.2, train_size=100, **fields)
        return Task(c.key(), c, "d")

    a0, b, a1, a2, a3 = (task(seed=0), task(seed=0, lr=0.1), task(seed=1),
                         task(seed=2, train_offset=100), task(seed=3))
    groups = fuse([a0, b, a1, a2, a3], 3)
    assert [[t.key for t in g] for g in groups] == [[a0.key, a1.key, a2.key], [b.key],
                                                    [a3.key]]
    assert fuse([a0, a1], 1) == [[a0], [a1]]
    whole = [Task(c.key(), c, "d") for c in (TrainConfig(seed=0), TrainConfig(seed=1),
                                             TrainConfig(seed=2, train_offset=10))]
    assert [len(g) for g in fuse(whole, 4)] == [2, 1]  # a shorter whole-set slice: alone


def test_a_fused_group_runs_in_one_worker_and_honours_claims(tmp_path):
    from conftest import make_idx_dir

    data_dir = str(make_idx_dir(tmp_path / "idx", 64, 50))
    configs = [TrainConfig(arch="sk", width=0.2, epochs=1, train_size=32,
                           train_offset=32 * (s % 2), seed=s) for s in range(3)]
    tasks = [Task(c.key(), c, data_dir) for c in configs]
    refused = tasks[1].key
    results = list(execute(fuse(tasks, 3), ["cpu"], claim=lambda t: t.key != refused))
    assert sorted(r.key for r in results) == sorted([tasks[0].key, tasks[2].key])
    assert {r.status.value for r in results} == {"COMPLETE"}
    assert results[0].epochs[0].train_loss != results[1].epochs[0].train_loss


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_groups_train_on_the_gpu(tmp_path):
    from conftest import make_idx_dir

    data_dir = str(make_idx_dir(tmp_path / "idx", 256, 100))
    configs = [TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=1, train_size=128,
                           train_offset=128 * (s % 2), seed=s) for s in range(6)]
    tasks = [Task(c.key(), c, data_dir) for c in configs]
    results = list(execute(fuse(tasks, 3), parse_devices("cuda:0x2")))
    assert len(results) == 6 and {r.status.value for r in results} == {"COMPLETE"}
    assert {r.device for r in results} == {"cuda:0"}


class FakeOOM(RuntimeError):
    def __init__(self):
        super().__init__("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_is_retried_alone_on_the_gpu(tmp_path):
    import fcntl
    import threading
    import time

    from benchmark.execute import _flock, with_oom_retry

    events = []
    other_job_running = threading.Event()

    def retry_waits_at_the_gate() -> bool:
        """The retry holds the gate (new jobs wait) while it waits for the GPU."""
        fd = os.open(tmp_path / "cuda-0.gate", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def other_job():  # another slot's job on the same GPU, still training at the OOM
        with _flock(str(tmp_path / "cuda-0.busy"), fcntl.LOCK_SH):
            other_job_running.set()
            deadline = time.monotonic() + 60  # a retry that never waits is seen as one
            while not retry_waits_at_the_gate() and time.monotonic() < deadline:
                time.sleep(0.01)
            events.append("other job done")

    def attempt():
        events.append("attempt")
        if events.count("attempt") == 1:
            raise FakeOOM()
        return "trained"

    thread = threading.Thread(target=other_job)
    thread.start()
    other_job_running.wait()
    assert with_oom_retry(attempt, "cuda:0", str(tmp_path)) == "trained"
    thread.join()
    # the retry waited until it had the GPU to itself
    assert events == ["attempt", "other job done", "attempt"]


def test_a_second_out_of_memory_fails_and_other_errors_are_not_retried(tmp_path):
    from benchmark.execute import with_oom_retry

    calls = []

    def always_oom():
        calls.append(1)
        raise FakeOOM()

    with pytest.raises(FakeOOM):
        with_oom_retry(always_oom, "cuda:0", str(tmp_path))
    assert len(calls) == 2

    def broken():
        calls.append(1)
        raise ValueError("a bug")

    calls.clear()
    with pytest.raises(ValueError):
        with_oom_retry(broken, "cuda:0", str(tmp_path))
    assert len(calls) == 1


def _reports_then_waits(marker_dir: str):
    """A worker function that reports epoch 1 of its job through the feed, then waits
    (at most a minute) for the runner's side to show it has seen it: the marker file the
    test's `on_epochs` writes, before it reports epoch 2 and finishes."""
    def work(tasks, device, lock_dir, threads, eval_every, checkpoints, feed=None):
        import time

        from benchmark.execute import failed_results
        from benchmark.records import EpochMetrics

        (task,) = tasks
        feed.put(task.key, EpochMetrics(1, 0.5, 0.4, 90.0, 1.0))
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(marker_dir, task.key)):
            if time.monotonic() > deadline:
                return failed_results(tasks, "epoch 1 never reached the runner", device)
            time.sleep(0.05)
        feed.put(task.key, EpochMetrics(2, 0.3, 0.2, 95.0, 1.0))
        epochs = (EpochMetrics(1, 0.5, 0.4, 90.0, 1.0), EpochMetrics(2, 0.3, 0.2, 95.0, 1.0))
        return [JobResult(task.key, JobStatus.COMPLETE, epochs=epochs)]
    return work


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_epochs_reach_the_runner_while_their_job_runs(tmp_path, backend):
    import contextlib

    from benchmark import backends
    from benchmark.backends.dask import dask_client

    seen = []

    def on_epochs(items):
        assert items  # a poll that brought nothing calls nothing
        for key, metrics in items:
            seen.append((key, metrics.epoch, metrics.test_accuracy))
            (tmp_path / key).touch()  # lets the waiting worker finish its job

    tasks = [Task(f"k{i}", TrainConfig(seed=i), "d") for i in range(3)]
    cluster = dask_client(None, 2) if backend == "dask" else contextlib.nullcontext()
    with cluster:
        results = list(execute([[t] for t in tasks], ["cpu", "cpu"],
                               backend=backends.create(backend),
                               on_epochs=on_epochs, work=_reports_then_waits(str(tmp_path))))
    assert {r.status for r in results} == {JobStatus.COMPLETE}, [r.error for r in results]
    for task in tasks:  # epoch 1 of every job came in while the job ran (it waited for it)
        assert (task.key, 1, 90.0) in seen


def test_the_file_feed_reads_each_epoch_once_and_forgets_finished_jobs(tmp_path):
    from benchmark.feed import FileFeed
    from benchmark.records import EpochMetrics

    feed = FileFeed(tmp_path / "epochs")
    feed.sender.put("a", EpochMetrics(1, 0.5, 0.4, 90.0, 1.0))
    feed.sender.put("b", EpochMetrics(1, 0.6, 0.5, 80.0, 1.0))
    assert [(k, m.epoch) for k, m in feed.receive()] == [("a", 1), ("b", 1)]
    assert feed.receive() == []  # nothing read twice
    feed.sender.put("a", EpochMetrics(2, 0.3, 0.2, 95.0, 1.0))
    feed.done(["a"])  # its result is in: its file goes, unread lines with it
    assert sorted(p.name for p in (tmp_path / "epochs").iterdir()) == ["b.jsonl"]
    feed.sender.put("b", EpochMetrics(2, 0.4, 0.3, 85.0, 1.0))
    assert [(k, m.epoch) for k, m in feed.receive()] == [("b", 2)]


def test_cores_are_shared_out_without_oversubscribing():
    from benchmark.execute import shares

    assert shares(2, 1) == [2]
    assert shares(2, 2) == [1, 1]
    assert shares(4, 3) == [2, 1, 1]
    assert shares(2, 4) == [1, 1, 1, 1]  # more jobs than cores: one each, never zero


def _records_threads():
    """A worker function that reports the intra-op threads it was dispatched with and, for
    the key "long", waits (at most a minute) until the parent raises its share (once
    "short" has finished), then reports the share it saw."""
    def work(tasks, device, lock_dir, threads, eval_every, checkpoints, feed=None):
        import time

        (task,) = tasks
        seen = [threads.count]  # what the parent dispatched it with
        if task.key == "long":
            deadline = time.monotonic() + 60
            while threads.current() == threads.count and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append(threads.current())
        return [JobResult(task.key, JobStatus.COMPLETE, error=",".join(map(str, seen)))]
    return work


def test_a_job_left_alone_takes_the_cores_the_others_free(tmp_path):
    """Two jobs on two CPU slots sharing two cores: one thread each while both run; the
    long one takes both cores once the short one is done. Alone, a job starts on both."""
    tasks = [Task("long", TrainConfig(seed=0), "d"), Task("short", TrainConfig(seed=1), "d")]
    got = {r.key: r.error for r in execute([[t] for t in tasks], ["cpu", "cpu"], cores=2,
                                           work=_records_threads())}
    assert got == {"short": "1", "long": "1,2"}
    alone = list(execute([[tasks[1]]], ["cpu", "cpu"], cores=2,
                         work=_records_threads()))
    assert alone[0].error == "2"
    fixed = list(execute([[tasks[1]]], ["cpu", "cpu"], threads=1,
                         work=_records_threads()))
    assert fixed[0].error == "1"  # without cores to share: the fixed count


def test_a_running_job_takes_up_a_new_thread_count_after_its_epoch(tmp_path):
    """The worker's side, in this process: a job started on one thread rereads its share
    after each epoch and trains on."""
    from conftest import make_idx_dir

    from benchmark.execute import Threads, run_group

    data_dir = str(make_idx_dir(tmp_path / "idx", 64, 32))
    share = tmp_path / "threads"
    share.write_text("2")
    before = torch.get_num_threads()
    try:
        config = TrainConfig(arch="sk", width=0.2, epochs=2, batch_size=32, train_size=64)
        (result,) = run_group((Task(config.key(), config, data_dir),), "cpu", None,
                              Threads(1, str(share)))
        assert result.status == JobStatus.COMPLETE, result.error
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_job_stops_after_the_epoch_when_the_next_would_outlast_its_worker():
    from benchmark.execute import Retirement, Retiring

    now = [1000.0]
    retirement = Retirement(deadline=1100.0, clock=lambda: now[0])
    now[0] += 20  # epoch 1 took 20 s; the next would end by 1020 + 30 + 10 margin < 1100
    retirement.check()
    now[0] += 30  # epoch 2 took 30 s: 1050 + 45 + 10 > 1100, stop here
    with pytest.raises(Retiring, match="the worker retires in 50 s; an epoch takes 30 s"):
        retirement.check()


def test_only_a_checkpointed_single_job_on_a_dask_worker_can_stop_early(tmp_path):
    from benchmark.execute import Retirement

    one, two = [Task("k1", TrainConfig(), "d")], [Task(k, TrainConfig(), "d") for k in "ab"]
    assert Retirement.of_worker(one, None) is None  # nothing to resume from
    assert Retirement.of_worker(two, str(tmp_path)) is None  # fused groups: no checkpoints
    assert Retirement.of_worker(one, str(tmp_path)) is None  # not on a Dask worker
