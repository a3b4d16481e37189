"""Dashboard at scale: server time of each page and update on a synthetic database of
10,000 jobs and 200,000 epochs.

    python perf/dashboard.py [--jobs N] [--epochs E] [--repeat R] [--out FILE]
    (or: nox -s dashboard)

Builds (once, in a temporary directory) one study of `--jobs` cell runs, each its own
job (10 sections of `--cells` cells, default 10, and `--jobs` / (10 `--cells`) seeds:
100 at the defaults): 95% COMPLETE with one run of
`--epochs` epochs each, 3% RUNNING with half their epochs live, 2% PENDING. The grid
goes in through `ResultStore.sync_study`; runs and epochs by bulk inserts. Then it times,
in process through Starlette's test client (server time: routing, the store's reads, the
statistics, JSON), the median of `--repeat` requests of:

- the index (`/api/studies`) and the index page shell (`/`);
- the study page's data: `/api/studies/<name>` (every cell run) and `/summary` (effects,
  claims, curves): its first request (the server computes the whole study once), warm,
  and the first after a run was recorded (only that run's sections and job again);
- an incremental update (`/updates?after=`) after one new live epoch and one finished
  run, as a page polling every second sees them;

and the peak Python memory one request allocates (tracemalloc), against the goal of
300 ms each, memory bounded. A harness outside the package (as perf/throughput.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from sqlalchemy import String, func, insert, select, update
from starlette.testclient import TestClient

from benchmark import Cell, Section, Study, TrainConfig
from benchmark.plan import expand
from benchmark.provenance import code_version
from benchmark.records import EpochMetrics, JobStatus
from benchmark.serve import make_app
from benchmark.store import ResultStore, Runner, now
from benchmark.store.tables import EpochRow, JobRow, LiveEpochRow, RunRow

GOAL_MS = 300.0


def build(path: Path, jobs: int, epochs: int, cells: int = 10) -> dict:
    """The synthetic database (10 sections of `cells` cells, jobs / (10 cells) seeds);
    returns what the timing needs (the running jobs, their runner)."""
    seeds = max(1, jobs // (10 * cells))
    sections = [Section(f"S{i}", [Cell(f"lr={0.001 * (j + 1) + i:g}", lr=0.001 * (j + 1) + i)
                                  for j in range(cells)], title=f"section {i}")
                for i in range(10)]
    study = Study("big", TrainConfig(epochs=epochs, train_size=1000), seeds=list(range(seeds)),
                  sections=sections)
    specs = expand(study)
    store = ResultStore(f"sqlite:///{path}")
    t0 = time.perf_counter()
    store.sync_study("big", "big.py", "hash", "synthetic", study.sections, specs)
    cv, at = code_version(), now()
    runner = Runner("bench", "elsewhere", 1)
    with store.session() as s:
        ids = s.execute(select(JobRow.job_key, JobRow.job_id).order_by(JobRow.job_id)).all()
        n_done, n_running = int(len(ids) * 0.95), int(len(ids) * 0.03)
        done, running = ids[:n_done], ids[n_done:n_done + n_running]
        s.execute(update(JobRow).where(JobRow.job_id.in_([i for _, i in done]))
                  .values(status=JobStatus.COMPLETE.value, code_version=cv, attempts=1))
        # a grid that ran for hours: each job finished at its own time, the last a minute ago
        s.execute(update(JobRow).values(
            updated_at=func.datetime(at - timedelta(hours=3), "+" + func.cast(
                JobRow.job_id, String) + " seconds")))
        s.execute(update(JobRow).where(JobRow.updated_at > at - timedelta(minutes=1))
                  .values(updated_at=at - timedelta(minutes=1)))
        s.execute(update(JobRow).where(JobRow.job_id.in_([i for _, i in running]))
                  .values(status=JobStatus.RUNNING.value, runner=runner.runner_id,
                          runner_host=runner.host, runner_pid=1, attempts=1,
                          lease_expires=at + timedelta(hours=1), updated_at=at))
        s.execute(insert(RunRow), [
            {"job_id": i, "status": JobStatus.COMPLETE.value, "code_version": cv,
             "test_accuracy": 97.0 + (i % 100) / 100, "epochs_done": epochs,
             "param_count": 1000, "train_seconds": 10.0, "wall_seconds": 11.0,
             "device": "cpu", "host": "h", "runner": "bench"} for _, i in done])
        run_ids = dict(s.execute(select(RunRow.job_id, RunRow.run_id)).all())
        rows = [{"run_id": run_ids[i], "epoch": e, "train_loss": 1.0 / e, "test_loss": 1.0 / e,
                 "test_accuracy": 90.0 + e * 7.0 / epochs + (i % 7) / 10, "seconds": 0.5}
                for _, i in done for e in range(1, epochs + 1)]
        for k in range(0, len(rows), 50_000):
            s.execute(insert(EpochRow), rows[k:k + 50_000])
        s.execute(insert(LiveEpochRow), [
            {"job_id": i, "attempt": 1, "epoch": e, "train_loss": 1.0, "test_loss": 1.0,
             "test_accuracy": 90.0 + e, "seconds": 0.5, "written_at": at}
            for _, i in running for e in range(1, epochs // 2 + 1)])
    built = time.perf_counter() - t0
    store.close()
    return {"jobs": len(ids), "epochs": len(rows), "live_epochs": n_running * (epochs // 2),
            "build_seconds": built, "running": [k for k, _ in running], "runner": runner}


def timed(client: TestClient, url: str, repeat: int, **params) -> dict:
    """Median and worst time of `repeat` requests, then one more under tracemalloc for the
    memory it allocates at its peak (tracemalloc slows Python down: never both at once)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url, params=params or None)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    tracemalloc.start()
    client.get(url, params=params or None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"median_ms": statistics.median(times), "max_ms": max(times),
            "peak_mib": peak / 2 ** 20, "bytes": len(response.content)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cells", type=int, default=10, help="cells per section")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default="results/dashboard_perf.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.sqlite"
        info = build(path, args.jobs, args.epochs, args.cells)
        print(f"synthetic database: {info['jobs']} jobs in 10 sections of {args.cells} cells, "
              f"{info['epochs']} epochs of finished "
              f"runs, {info['live_epochs']} live epochs ({path.stat().st_size / 2**20:.0f} MiB, "
              f"built in {info['build_seconds']:.1f} s)")
        writer = ResultStore(f"sqlite:///{path}")
        reader = ResultStore(f"sqlite:///{path}", read_only=True)
        figures = {}
        with TestClient(make_app(reader)) as client:
            figures["index (/api/studies)"] = timed(client, "/api/studies", args.repeat)
            figures["index page (/)"] = timed(client, "/", args.repeat)
            figures["study page (/study/big)"] = timed(client, "/study/big", args.repeat)
            figures["study data (/api/studies/big)"] = timed(client, "/api/studies/big",
                                                             args.repeat)
            figures["summary, first request"] = timed(client, "/api/studies/big/summary", 1)
            figures["summary, first request"]["peak_mib"] = float("nan")  # the memory pass was warm
            figures["summary, warm"] = timed(client, "/api/studies/big/summary", args.repeat)
            cursor = client.get("/api/studies/big").json()["cursor"]
            key = info["running"][0]
            writer.record_epochs(info["runner"], [(key, EpochMetrics(
                args.epochs // 2 + 1, 0.5, 0.4, 96.0, 0.5))])
            figures["update: one new epoch"] = timed(client, "/api/studies/big/updates",
                                                    args.repeat, after=cursor)
            answer = client.get("/api/studies/big/updates", params={"after": cursor}).json()
            assert [e["key"] for e in answer["epochs"]] == [key], answer["epochs"]
            figures["update: nothing new"] = timed(client, "/api/studies/big/updates",
                                                  args.repeat, after=answer["cursor"])
            from benchmark.records import JobResult
            epochs = tuple(EpochMetrics(e, 0.5, 0.4, 96.0, 0.5)
                           for e in range(1, args.epochs + 1))
            writer.record(JobResult(key, JobStatus.COMPLETE, epochs=epochs,
                                    code_version=code_version()), info["runner"])
            figures["update: one job finished"] = timed(client, "/api/studies/big/updates",
                                                       args.repeat, after=answer["cursor"])
            figures["summary after a new run"] = timed(client, "/api/studies/big/summary",
                                                            1)
            figures["summary after a new run"]["peak_mib"] = float("nan")
        reader.close()
        writer.close()
    print(f"\nserver time per request, median of {args.repeat} (goal < {GOAL_MS:.0f} ms):")
    for name, f in figures.items():
        verdict = "meets" if f["median_ms"] < GOAL_MS else "MISSES"
        print(f"  {name:<34} {f['median_ms']:8.1f} ms (max {f['max_ms']:7.1f}), "
              f"{f['bytes'] / 1024:8.1f} KiB, peak {f['peak_mib']:6.1f} MiB allocated  "
              f"{verdict} the goal")
    results = {"jobs": info["jobs"], "epochs": info["epochs"], "goal_ms": GOAL_MS,
               "figures": figures}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {out}")
    return results


if __name__ == "__main__":
    main()
