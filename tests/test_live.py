"""Epochs live in the database: a running job's curve is visible to any reader while it
trains, and gives way to its recorded run when it finishes."""

import functools
import json
import os
import sqlite3
import threading
import time

from benchmark import runner as running
from benchmark.execute import execute
from benchmark.records import EpochMetrics, JobResult, JobStatus
from benchmark.store import ResultStore
from benchmark.studyfile import load_study


def _waits_for_marker(marker_dir: str):
    """Worker function: each job reports epoch 1 through the feed, then waits (a minute
    at most) for the marker file the test writes once it has read that epoch from the
    database, then reports epoch 2 and finishes."""
    def work(tasks, device, lock_dir, threads, eval_every, checkpoints, feed=None):
        from benchmark.execute import failed_results

        results = []
        for task in tasks:
            first = EpochMetrics(1, 0.5, 0.4, 90.0, 1.0)
            feed.put(task.key, first)
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(marker_dir, task.key)):
                if time.monotonic() > deadline:
                    return failed_results(tasks, "epoch 1 never reached the database", device)
                time.sleep(0.05)
            second = EpochMetrics(2, 0.3, 0.2, 95.0, 1.0)
            feed.put(task.key, second)
            results.append(JobResult(task.key, JobStatus.COMPLETE, epochs=(first, second),
                                     code_version=_code()))
        return results
    return work


def _code():
    from benchmark.provenance import code_version

    return code_version()


def test_a_running_jobs_epochs_reach_every_reader_then_its_run(workdir, monkeypatch, cli):
    monkeypatch.chdir(workdir)
    markers = workdir / "markers"
    markers.mkdir()
    monkeypatch.setattr(running, "execute",
                        functools.partial(execute, work=_waits_for_marker(str(markers))))
    loaded = load_study(workdir / "tiny.py")
    url = f"sqlite:///{workdir / 'r.sqlite'}"
    writer = ResultStore(url)
    failure = []

    def run():
        try:
            running.run_study(loaded, writer, running.RunOptions(slots=("cpu", "cpu")))
        except BaseException as exc:  # surfaces in the test thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    keys = sorted({s.key for s in loaded.specs if not s.skip_reason})
    seen: dict[str, list[int]] = {}
    deadline = time.monotonic() + 120
    try:
        while len(seen) < len(keys) and time.monotonic() < deadline and thread.is_alive():
            reader = ResultStore(url, read_only=True)  # another process would see the same
            live = reader.live_epochs(study="tiny")  # a row per cell the job serves
            live = live.drop_duplicates("live_epoch_id") if len(live) else live
            states = reader.job_states(keys, _code())
            reader.close()
            for key, group in (live.groupby("job_key") if len(live) else ()):
                if key not in seen:
                    assert states[key].status == JobStatus.RUNNING
                    seen[key] = list(group["epoch"])
                    assert list(group["test_accuracy"]) == [90.0]
                    shown = json.loads(cli("status", "tiny.py", "--db", "r.sqlite",
                                           "--json").output)["running"]
                    job = next(j for j in shown if j["key"] == key)
                    assert (job["epochs_done"], job["test_accuracy"]) == (1, 90.0), job
                    (markers / key).touch()  # the worker may go on
            time.sleep(0.05)
    finally:
        for key in keys:  # never leave a worker waiting
            (markers / key).touch()
        thread.join(120)
    assert not failure, failure
    assert seen == {key: [1] for key in keys}
    con = sqlite3.connect(workdir / "r.sqlite")
    assert con.execute("select count(*) from live_epochs").fetchone() == (0,)  # replaced
    con.close()
    reader = ResultStore(url, read_only=True)
    assert reader.live_epochs(study="tiny").empty
    epochs = reader.epochs_frame("tiny")
    assert len(epochs) == 2 * 6 and set(epochs["epoch"]) == {1, 2}  # 6 cell runs, 4 jobs
    reader.close()
    writer.close()
