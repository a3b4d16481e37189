"""Shared fixtures: small MNIST-format IDX datasets written by the tests, tiny study files."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

STUDIES = Path(__file__).parent / "studies"
DATA = Path(__file__).parent / "data"  # files written by earlier cnnbench versions


def old_database(dump: str, path: Path) -> Path:
    """A database written by an earlier cnnbench version, rebuilt at `path` from its SQL
    dump in tests/data (text in git, not a binary database)."""
    import sqlite3

    con = sqlite3.connect(path)
    con.executescript((DATA / dump).read_text())
    con.close()
    return path


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write `array` (uint8) as an IDX file, the format of the MNIST distribution."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def _every_class(labels: np.ndarray, classes: int) -> np.ndarray:
    """`labels` with each class they lack given to the first images, so that a dataset
    of at least `classes` images has every class (as a real one does; cnnbench checks it)."""
    for c in np.setdiff1d(np.arange(classes), labels):
        counts = np.bincount(labels, minlength=classes)
        spare = np.flatnonzero(counts[labels] > 1)  # images whose class has others
        if not len(spare):
            break  # fewer images than classes
        labels[spare[0]] = c
    return labels


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 images: label k lights up row band k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = _every_class(rng.integers(0, 10, n), 10).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 + 2 * k:4 + 2 * k, 4:24] = 255
    return images, labels


def make_idx_dir(directory: Path, n_train: int = 320, n_test: int = 200,
                 gz: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tx, ty = synthetic_digits(n_train, 0)
    vx, vy = synthetic_digits(n_test, 1)
    write_idx(directory / "train-images-idx3-ubyte", tx, gz)
    write_idx(directory / "train-labels-idx1-ubyte", ty, gz)
    write_idx(directory / "t10k-images-idx3-ubyte", vx, gz)
    write_idx(directory / "t10k-labels-idx1-ubyte", vy, gz)
    return directory


def synthetic_colour(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 32x32 colour images, (N, 3, 32, 32): label k tints channel k % 3 of row
    band k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = _every_class(rng.integers(0, classes, n), classes).astype(np.int64)
    images = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
    for i, k in enumerate(labels):
        band = 2 + 2 * (k % 14)
        images[i, k % 3, band:band + 2, 4:28] = 255
    return images, labels


def write_cifar_dir(directory: Path, n_train: int = 250, n_test: int = 100,
                    hundred: bool = False) -> tuple:
    """Batches in CIFAR's own format (pickled dicts: 'data' N x 3072 uint8, colour planes
    row-major; 'labels', or CIFAR-100's 'fine_labels'), as the archives unpack them; the
    arrays (x_train, y_train, x_test, y_test) they hold."""
    import pickle

    directory.mkdir(parents=True, exist_ok=True)
    tx, ty = synthetic_colour(n_train, 0, 100 if hundred else 10)
    vx, vy = synthetic_colour(n_test, 1, 100 if hundred else 10)
    key = b"fine_labels" if hundred else b"labels"

    def dump(name, x, y):
        batch = {b"batch_label": name.encode(), key: [int(v) for v in y],
                 b"data": x.reshape(len(x), 3072), b"filenames": [b"x.png"] * len(x)}
        with open(directory / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)

    if hundred:
        dump("train", tx, ty)
        dump("test", vx, vy)
        meta = {b"fine_label_names": [b"c%d" % i for i in range(100)]}
        (directory / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    else:
        for i, part in enumerate(np.array_split(np.arange(n_train), 5), 1):
            dump(f"data_batch_{i}", tx[part], ty[part])
        dump("test_batch", vx, vy)
        meta = {b"label_names": [b"c%d" % i for i in range(10)], b"num_vis": 3072}
        (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tx, ty, vx, vy


class Background:
    """A command in a subprocess, its output read line by line in a thread, for a test
    that acts on what it says: `wait_for(test)` waits until `test(lines)` holds (an
    observable state, not a sleep). Killed on exit if still running."""

    def __init__(self, cmd: list[str], **popen):
        import subprocess
        import threading

        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, **popen)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, test, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: test(self.lines), timeout)

    def said(self, text: str, timeout: float) -> bool:
        """Whether a line holding `text` came within `timeout` seconds."""
        return self.wait_for(lambda lines: any(text in line for line in lines), timeout)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(10)
        self.proc.stdout.close()


def epochs_reported(jobs: int, epoch: int = 1, of: int = 3):
    """A `Background.wait_for` test: `jobs` jobs have reported epoch `epoch` of `of`."""
    return lambda lines: sum(f": epoch {epoch}/{of}" in line for line in lines) >= jobs


def load_perf():
    """The perf harness (perf/throughput.py, outside the package) as a module."""
    import importlib
    import sys

    folder = str(Path(__file__).parent.parent / "perf")
    if folder not in sys.path:
        sys.path.insert(0, folder)  # also where loky workers look for its functions
    return importlib.import_module("throughput")


@pytest.fixture(scope="session", autouse=True)
def dask_dashboard_port_taken():
    """Port 8787 (Dask's dashboard default) held for the whole session, as a user's Jupyter
    Dask dashboard would: no local cluster of cnnbench may need it. Already held by another
    process: just as good."""
    import socket

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass
    yield
    holder.close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test touches the user's MNIST cache or a database outside tmp_path."""
    monkeypatch.setenv("CNNBENCH_DATA", str(tmp_path / "mnist-cache"))
    monkeypatch.delenv("CNNBENCH_DB", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """tmp_path with the study fixtures copied in and a small dataset at ./idx."""
    for study in STUDIES.glob("*.py"):
        shutil.copy(study, tmp_path / study.name)
    make_idx_dir(tmp_path / "idx")
    return tmp_path


@pytest.fixture
def cli():
    from benchmark.cli import main

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (the CI environment variable set), a skip is a failure, except for the
    tests marked gpu: a missing browser, database server or MNIST must not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI, where only the CUDA tests may skip: {reason}. "
                           "Install what it needs (see .ci/run).")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Under CI, a whole module skipped while it is collected (a module-level
    `pytest.importorskip`, `pytest.skip(allow_module_level=True)`) is a failure too."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"{collector.nodeid} skipped as a whole under CI: {reason}. "
                           "Install what it needs (see .ci/run).")


def pytest_sessionfinish(session, exitstatus):
    """A test session leaves no pool folder in the temporary directory: its own pools are
    closed (a folder of this process left is a leak, and fails the session), and those of
    the runs its tests killed go as a next run's would (`sweep_locks`)."""
    import tempfile

    from benchmark.backends.local import LOCKS, sweep_locks

    sweep_locks()
    mine = sorted(Path(tempfile.gettempdir()).glob(f"{LOCKS}{os.getpid()}-*"))
    if mine:
        print(f"\nthe session left pool folders of its own: {[str(p) for p in mine]}")
        session.exitstatus = 1
