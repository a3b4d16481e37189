from dataclasses import replace

import pytest

from benchmark import Cell, Exclude, Section, SpecError, Study, TrainConfig, vary
from benchmark.plan import (
    estimated_costs,
    expand,
    forward_macs,
    job_cost,
    longest_first,
    unique_jobs,
)


def _study(**kw):
    return Study("s", TrainConfig(train_size=1000), seeds=kw.pop("seeds", [0, 7]), sections=[
        Section("A", [Cell("base"), Cell("BN", batch_norm=True, published=98.2)]),
        Section("B", vary("batch_norm", [True, False]), **kw),
        Section("C", vary("seed", [3, 4]), fixed={"arch": "sk"}),
    ])


def test_expansion_order_counts_and_shared_seeds():
    specs = expand(_study())
    assert [(s.section, s.cell, s.config.seed) for s in specs] == [
        ("A", "base", 0), ("A", "base", 7), ("A", "BN", 0), ("A", "BN", 7),
        ("B", "batch_norm=True", 0), ("B", "batch_norm=True", 7),
        ("B", "batch_norm=False", 0), ("B", "batch_norm=False", 7),
        ("C", "seed=3", 3), ("C", "seed=4", 4),  # a cell's own seed is its only replicate
    ]
    assert specs[2].published == 98.2 and specs[2].config.batch_norm
    assert specs[8].config.arch == "sk" and specs[8].config.train_size == 1000


def test_a_cell_reached_from_two_sections_is_one_job():
    specs = expand(_study())
    assert len(specs) == 10
    assert len(unique_jobs(specs)) == 6  # B duplicates A's four jobs
    assert specs[2].key == specs[4].key


def test_expansion_is_deterministic():
    assert [s.key for s in expand(_study())] == [s.key for s in expand(_study())]


def test_exclusions_are_kept_with_reason_and_not_run():
    specs = expand(_study(exclude=[Exclude({"batch_norm": False}, "not needed")]))
    skipped = [s for s in specs if s.skip_reason]
    assert [(s.section, s.cell) for s in skipped] == [("B", "batch_norm=False")] * 2
    # A still needs that config, so it stays a job to run
    assert skipped[0].key in unique_jobs(specs)
    only = Study("s", TrainConfig(), [Section("A", vary("width", [1, 2]),
                                              exclude=[Exclude({"width": 2}, "too big")])])
    assert len(unique_jobs(expand(only))) == 1


def test_longest_first_orders_by_estimated_cost():
    jobs = {c.key(): c for c in [TrainConfig(arch="sk", width=0.2, train_size=500),
                                 TrainConfig(arch="sk", width=2.0, train_size=10000),
                                 TrainConfig(arch="sk", width=0.2, batch_norm=True),
                                 TrainConfig(arch="base", train_size=10000)]}
    order = longest_first(estimated_costs(jobs, {"mnist": 60000}))
    # Measured on 2 cores (fp32): SK2 on 10k samples ~900 s, SK0.2 on all 60k ~500 s,
    # base on 10k ~120 s, SK0.2 on 500 samples ~15 s (mostly its 20 test passes).
    assert [(jobs[k].arch, jobs[k].width, jobs[k].train_size) for k in order] == [
        ("sk", 2.0, 10000), ("sk", 0.2, None), ("base", 1.0, 10000), ("sk", 0.2, 500)]


def test_cost_model_weighs_the_per_epoch_test_pass():
    small = TrainConfig(arch="sk", width=0.2, train_size=500)
    ratio = job_cost(small, 500) / job_cost(replace(small, train_size=5000), 5000)
    assert 0.2 < ratio < 0.5  # measured 15 s against 48 s: not 1/10


def test_cost_model_matches_published_net_sizes():
    # base net: 2.3 M multiply-accumulates per sample forward (13.8 MFLOP fwd+bwd)
    assert 2.2e6 < forward_macs(TrainConfig()) < 2.4e6


def test_a_setting_another_leaves_unused_is_normalised_out_of_the_job():
    """SGD's momentum inherited by an Adam cell, dropout_p by a cell without dropout: the
    job is the plain one (same key, so it trains once), not a copy under another key."""
    base = TrainConfig(momentum=0.9, dropout="fc1", dropout_p=0.2, train_size=1000)
    specs = expand(Study("s", base, sections=[Section("A", [
        Cell("sgd"), Cell("adam", optimizer="adam"), Cell("no dropout", dropout="none"),
        Cell("sgd p0.3", dropout_p=0.3)])]))
    sgd, adam, plain, p03 = (s.config for s in specs)
    assert (sgd.momentum, sgd.dropout_p, p03.dropout_p) == (0.9, 0.2, 0.3)  # used: kept
    assert adam.key() == TrainConfig(optimizer="adam", dropout="fc1", dropout_p=0.2,
                                     train_size=1000).key()
    assert adam.momentum == 0.5
    assert plain.key() == TrainConfig(momentum=0.9, train_size=1000).key()


def test_a_setting_written_beside_one_that_leaves_it_unused_is_refused():
    with pytest.raises(SpecError, match="field 'momentum' = 0.9 has no effect with optimizer "
                                        "'adam'"):
        TrainConfig(optimizer="adam", momentum=0.9)
    with pytest.raises(SpecError, match="cell 'x': field 'dropout_p' = 0.3 has no effect with "
                                        "dropout 'none'"):
        Cell("x", arch="sk", dropout="none", dropout_p=0.3)
    with pytest.raises(SpecError, match="section 'A' fixed: field 'momentum'"):
        Section("A", [Cell("x")], fixed={"optimizer": "rmsprop", "momentum": 0.0})
    # the cell's own momentum, on a baseline whose optimizer takes none
    study = Study("s", TrainConfig(optimizer="adam"), sections=[
        Section("A", [Cell("m", momentum=0.9)])])
    with pytest.raises(SpecError, match="section 'A', cell 'm': field 'momentum' = 0.9"):
        expand(study)
    # your own network gets every field: dropout_p may be its own business
    assert TrainConfig(arch="mynets:net", dropout_p=0.2).dropout_p == 0.2
    # at the default it is no setting at all
    assert TrainConfig(optimizer="adam", momentum=0.5).key() == TrainConfig(optimizer="adam").key()


def test_a_directory_dataset_is_keyed_by_its_content_not_its_path(tmp_path):
    """New content at the same path makes new jobs; the same content moved keeps them."""
    import shutil

    import numpy as np
    from conftest import make_idx_dir, write_idx

    from benchmark.studyfile import load_study

    def keys(directory):
        study = tmp_path / "s.py"
        study.write_text(
            "from benchmark import Cell, Section, Study, TrainConfig\n"
            "def study():\n"
            f"    return Study('s', TrainConfig(dataset={str(directory)!r}),\n"
            "                 sections=[Section('A', [Cell('x')])])\n")
        return [s.key for s in load_study(study).specs]

    make_idx_dir(tmp_path / "d", 64, 20)
    before = keys(tmp_path / "d")
    shutil.move(tmp_path / "d", tmp_path / "moved")
    assert keys(tmp_path / "moved") == before
    labels = tmp_path / "moved" / "train-labels-idx1-ubyte"
    write_idx(labels, (np.fromfile(labels, np.uint8)[8:] + 1) % 10)  # same size, new labels
    assert keys(tmp_path / "moved") != before
