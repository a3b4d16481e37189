"""Colour images and datasets beyond IDX files: CIFAR's batch format, .npz files and
dataset functions, each trained through the CLI by a built-in and a user network; the
same content is the same job whatever its form or place; augmentation as a config field."""

import shutil
import sqlite3

import numpy as np
import pytest
import torch
from conftest import synthetic_colour, write_cifar_dir

from benchmark import TrainConfig, data, formats
from benchmark.train import to_device, train, train_fused

MODULE = '''
import numpy as np
from torch import nn

from conftest_like import synthetic_colour  # the test's own generator, copied beside


def make():
    """The same arrays as the CIFAR batches and the .npz file of the test."""
    tx, ty = synthetic_colour(250, 0)
    vx, vy = synthetic_colour(100, 1)
    return tx, ty, vx, vy


def linear(config, input_shape, num_classes):
    channels, height, width = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes))
'''

STUDY = '''
from benchmark import Cell, Section, Study, TrainConfig


def study():
    base = TrainConfig(epochs=1, batch_size=50, width=0.2, hidden=20)
    cells = [Cell(f"{arch}@{name}", arch=arch, dataset=where)
             for name, where in (("cifar", "cifar-dir"), ("npz", "colour.npz"),
                                 ("function", "colourdata:make"))
             for arch in ("base", "colourdata:linear")]
    return Study(name="colour", baseline=base, sections=[Section("C", cells)])
'''


@pytest.fixture
def colour_dir(tmp_path):
    import inspect

    import conftest

    arrays = write_cifar_dir(tmp_path / "cifar-dir")
    np.savez(tmp_path / "colour.npz", **dict(zip(formats.NPZ_KEYS, arrays, strict=True)))
    (tmp_path / "conftest_like.py").write_text(
        "import numpy as np\n\n\n" + inspect.getsource(conftest._every_class) + "\n\n"
        + inspect.getsource(conftest.synthetic_colour))
    (tmp_path / "colourdata.py").write_text(MODULE)
    (tmp_path / "colour.py").write_text(STUDY)
    return tmp_path


def test_one_content_three_forms_one_job_each_net_through_the_cli(colour_dir, cli):
    result = cli("run", "colour.py", "--jobs", "2", "--db", "c.sqlite")
    assert result.exit_code == 0, result.output
    # 6 cells, but the same content in three forms is one job per network
    assert "colour: 6 cells, 2 distinct jobs (2 new)" in result.output, result.output
    assert "finished: 2 complete" in result.output, result.output
    con = sqlite3.connect(colour_dir / "c.sqlite")
    rows = con.execute("select arch, data_hash, status from jobs order by arch").fetchall()
    assert [(a, s) for a, _, s in rows] == [("base", "COMPLETE"),
                                           ("colourdata:linear", "COMPLETE")], rows
    assert rows[0][1] == rows[1][1] == formats.array_hash(*data.read_any(
        colour_dir / "colour.npz"))
    accuracy = [a for (a,) in con.execute("select test_accuracy from runs")]
    assert all(a > 10 for a in accuracy), accuracy  # learnt something from colour
    con.close()

    # moving the files changes nothing; changing the content makes new jobs
    shutil.move(colour_dir / "colour.npz", colour_dir / "moved.npz")
    (colour_dir / "colour.py").write_text(STUDY.replace("colour.npz", "moved.npz"))
    again = cli("run", "colour.py", "--jobs", "2", "--db", "c.sqlite")
    assert again.exit_code == 0 and "Nothing to run" in again.output, again.output
    (colour_dir / "colourdata.py").write_text(MODULE.replace("vx, vy = synthetic_colour(100, 1)",
                                                             "vx, vy = synthetic_colour(99, 1)"))
    changed = cli("run", "colour.py", "--jobs", "2", "--db", "c.sqlite", "--dry-run")
    assert changed.exit_code == 0, changed.output
    assert "4 distinct jobs to train" in changed.output or "2 to run" in changed.output, \
        changed.output


def test_cifar_batches_read_as_n_c_h_w_with_per_channel_normalisation(tmp_path):
    tx, ty, vx, vy = write_cifar_dir(tmp_path / "c10")
    a = data.load_arrays(str(tmp_path / "c10"))
    assert a.train_x.shape == (250, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert np.array_equal(a.train_x, tx) and np.array_equal(a.test_y, vy)
    assert len(a.mean) == len(a.std) == 3
    assert a.mean[0] == pytest.approx(float(tx[:, 0].mean()) / 255)
    assert data.shapes_of(tmp_path / "c10")["train_images"] == (250, 3, 32, 32)
    assert data.input_shape_and_classes(tmp_path / "c10") == ((3, 32, 32), 10)
    d = to_device(a.train_x, a.train_y, a.test_x, a.test_y, "cpu", a.mean, a.std)
    assert d.train_x.shape == (250, 3, 32, 32)
    assert torch.allclose(d.train_x[:, 1].mean(), torch.tensor(0.0), atol=1e-4)
    assert torch.allclose(d.train_x[:, 2].std(), torch.tensor(1.0), atol=1e-3)
    # CIFAR-100's format, unpacked folder name and all
    write_cifar_dir(tmp_path / "c100" / "cifar-100-python", hundred=True)
    assert data.kind_of(tmp_path / "c100") == "cifar"
    assert data.input_shape_and_classes(tmp_path / "c100")[0] == (3, 32, 32)


def test_named_cifar10_is_verified_against_its_checksums(tmp_path, monkeypatch, cli):
    cache = data.cache_dir("cifar10")
    write_cifar_dir(cache)
    problems = data.verify(cache, "cifar10")  # synthetic files: not the published ones
    assert problems and all("fails its MD5 check" in p for p in problems), problems
    listing = cli("data", "cifar10")
    assert listing.exit_code == 2 and "fails its MD5 check" in listing.output, listing.output
    real = {f: data.md5(cache / f) for f in data.CIFAR10_MD5}  # as if these were published
    monkeypatch.setitem(data.DATASETS, "cifar10", data.DATASETS["cifar10"].__class__(
        **{**data.DATASETS["cifar10"].__dict__, "md5": real}))
    assert data.verify(cache, "cifar10") == []
    assert data.resolve("cifar10", fetch=False) == cache
    assert cli("data", "cifar10").output.count("MD5 verified") == 7


def _metrics(outcome):
    return [(e.train_loss, e.test_loss, e.test_accuracy) for e in outcome.epochs]


def test_augmentation_is_seeded_resumable_and_fuses(tmp_path):
    tx, ty = synthetic_colour(120, 0)
    vx, vy = synthetic_colour(40, 1)
    d = to_device(tx, ty, vx, vy, "cpu", (0.2, 0.2, 0.2), (0.3, 0.3, 0.3))
    base = TrainConfig(arch="base", width=0.2, hidden=20, epochs=2, batch_size=40,
                       train_size=80, augment="flip+crop")
    one = train(base, d)
    assert _metrics(train(base, d)) == _metrics(one)  # seeded: the same batches again
    plain = train(TrainConfig(**{**base.to_dict(), "augment": "none"}), d)
    assert plain.epochs[0].train_loss != one.epochs[0].train_loss  # it did augment
    # fused with another seed and slice: each model sees what it would alone
    other = TrainConfig(**{**base.to_dict(), "seed": 3, "train_offset": 40})
    fused = train_fused([base, other], d)
    for config, outcome in zip([base, other], fused, strict=True):
        alone = train(config, d)
        assert [e.train_loss for e in outcome.epochs] == pytest.approx(
            [e.train_loss for e in alone.epochs], rel=1e-4)
    # a job cut after epoch 1 resumes to the result of an unbroken run
    ck = tmp_path / "ck.pt"
    stopped = []

    def stop(index, metrics):
        stopped.append(metrics.epoch)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(base, d, checkpoint=ck, on_epoch=stop)
    assert ck.exists() and stopped == [1]
    assert _metrics(train(base, d, checkpoint=ck)) == _metrics(one)


def test_augment_none_keeps_every_key_and_augment_is_a_new_job():
    assert "augment" not in TrainConfig().to_dict() or TrainConfig().key() == TrainConfig(
        augment="none").key()
    known = TrainConfig(dataset="mnist", seed=0).key()
    assert TrainConfig(augment="flip").key() != known


def test_flip_and_crop_move_pixels_as_they_say():
    from benchmark import augment

    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    flipped = augment.apply(x, "flip", gen)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    cropped = augment.apply(x, "crop", torch.Generator().manual_seed(1))
    assert cropped.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    for i in range(2):  # each image is a window of its reflected-padded self
        windows = [padded[i, :, a:a + 8, b:b + 8] for a in range(3) for b in range(3)]
        assert any(torch.equal(cropped[i], w) for w in windows)


def test_the_cifar_study_dry_runs_where_cifar10_is_cached(monkeypatch, cli):
    """studies/cifar_ablation.py on CIFAR-10's format at full size (50k training images,
    synthetic): its grid expands, every slice fits, every net is timed on the colour
    images."""
    from pathlib import Path

    cache = data.cache_dir("cifar10")
    write_cifar_dir(cache, n_train=50_000, n_test=1_000)
    published = {f: data.md5(cache / f) for f in data.CIFAR10_MD5}  # synthetic stand-ins
    monkeypatch.setitem(data.DATASETS, "cifar10", data.DATASETS["cifar10"].__class__(
        **{**data.DATASETS["cifar10"].__dict__, "md5": published}))
    study = Path(__file__).parent.parent / "studies" / "cifar_ablation.py"
    result = cli("run", str(study), "--dry-run", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "distinct jobs to train" in result.output, result.output
    assert "estimated wall time" in result.output, result.output
    from benchmark.studyfile import load_study

    loaded = load_study(study)
    assert {s.section for s in loaded.specs} == set("BCDEFGJK")
    assert max(s.config.train_size or 50_000 for s in loaded.specs) == 50_000
    assert {s.config.dataset for s in loaded.specs} == {"cifar10"}


def test_each_seed_draws_its_own_flips_and_crops():
    """The augmentation stream is the job's: seeds differ in what they draw (a stream
    that ignored the seed gave every replicate the same flips and crops)."""
    from benchmark import augment

    x = torch.arange(64 * 3 * 8 * 8, dtype=torch.float32).reshape(64, 3, 8, 8)
    cpu = torch.device("cpu")

    def draw(seed):
        return augment.apply(x, "flip+crop", augment.generator("flip+crop", seed, cpu))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


@pytest.mark.parametrize("form", ["npz", "cifar"])
def test_the_content_hash_holds_the_labels(tmp_path, form):
    """Two datasets with the same images and other labels are two datasets: their results
    must never share a key."""
    tx, ty, vx, vy = write_cifar_dir(tmp_path / "a")
    relabelled = (ty + 1) % 10
    if form == "cifar":
        b = tmp_path / "b"
        write_cifar_dir(b)
        import pickle

        for batch in sorted(b.glob("data_batch_*")):
            content = pickle.loads(batch.read_bytes())
            content[b"labels"] = [(v + 1) % 10 for v in content[b"labels"]]
            batch.write_bytes(pickle.dumps(content, protocol=2))
        a = tmp_path / "a"
    else:
        a, b = tmp_path / "a.npz", tmp_path / "b.npz"
        np.savez(a, x_train=tx, y_train=ty, x_test=vx, y_test=vy)
        np.savez(b, x_train=tx, y_train=relabelled, x_test=vx, y_test=vy)
    assert data.content_hash(a) != data.content_hash(b)
