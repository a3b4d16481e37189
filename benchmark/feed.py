"""Live progress: each finished epoch of a running job, from its worker to the runner.

A feed has two ends. The sender travels to the workers with each job (it pickles) and
`put`s (job key, epoch metrics) there; the runner `receive`s what arrived since it last
looked, while it waits for results. What goes through is for people watching only:
results still travel with the finished job, and the database is written by the runner
alone, so a lost epoch line costs nothing but a stale progress display.

- `FileFeed`: loky workers on this machine append JSON lines to one file per job in a
  private directory; the runner reads what was added.
- `TopicFeed`: Dask workers publish on a topic of the scheduler's event log
  (`Worker.log_event`), which the runner's client reads (`Client.get_events`), so it
  works wherever the workers run. (Reading, not `subscribe_topic`: a subscription
  travels on another connection than the workers' events and can arrive after the
  first of them, which are then never forwarded.)
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import asdict
from pathlib import Path

from .records import EpochMetrics


def _encode(key: str, metrics: EpochMetrics) -> dict:
    return {"key": key, **asdict(metrics)}


def _decode(item: dict) -> tuple[str, EpochMetrics]:
    item = dict(item)
    key = item.pop("key")
    return key, EpochMetrics(**item)


class FileSender:
    def __init__(self, directory: str):
        self.directory = directory

    def put(self, key: str, metrics: EpochMetrics) -> None:
        line = json.dumps(_encode(key, metrics)) + "\n"
        # One write of a short line in append mode: the reader never sees half of it
        # unless it reads mid-write, which `FileFeed.receive` tolerates.
        with open(os.path.join(self.directory, f"{key}.jsonl"), "a") as fh:
            fh.write(line)


class FileFeed:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sender = FileSender(str(self.directory))
        self._offsets: dict[Path, int] = {}

    def receive(self) -> list[tuple[str, EpochMetrics]]:
        out = []
        for path in sorted(self.directory.glob("*.jsonl")):
            start = self._offsets.get(path, 0)
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits
            self._offsets[path] = start + len(complete)
            for line in complete.splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    out.append(_decode(json.loads(line)))
        return out

    def done(self, keys) -> None:
        """Jobs whose results are in: their files go, so a poll reads only running jobs'."""
        for key in keys:
            path = self.directory / f"{key}.jsonl"
            self._offsets.pop(path, None)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        pass  # the directory belongs to the pool, which removes it


class TopicSender:
    def __init__(self, topic: str):
        self.topic = topic

    def put(self, key: str, metrics: EpochMetrics) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, _encode(key, metrics))


class TopicFeed:
    def __init__(self, client):
        self.client = client
        self.topic = f"cnnbench-epochs-{uuid.uuid4().hex[:12]}"
        self.sender = TopicSender(self.topic)
        self._seen = 0  # events of the topic already received, in the scheduler's order

    def receive(self) -> list[tuple[str, EpochMetrics]]:
        try:
            events = self.client.get_events(self.topic)  # ((timestamp, message), ...)
        except Exception:  # the scheduler is busy or gone: progress can wait
            return []
        fresh, self._seen = events[self._seen:], len(events)
        out = []
        for _, item in fresh:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                out.append(_decode({k: v for k, v in item.items() if k != "worker"}))
        return out

    def done(self, keys) -> None:
        pass  # the scheduler's event log keeps its events; `receive` skips the read ones

    def close(self) -> None:
        pass
