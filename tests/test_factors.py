"""Your own factors: declared in Study(factors=...), set by cells like fields, seen by the
job as config.factors, in the key only off their default, one column each in the results."""

import pytest

from benchmark import Cell, Exclude, Section, SpecError, Study, TrainConfig, grid, vary
from benchmark.config import Factors
from benchmark.plan import expand
from benchmark.store import ResultStore, StoreError


def _study(cells, factors=None, **kwargs) -> Study:
    return Study("s", TrainConfig(epochs=1), [Section("A", cells, **kwargs)],
                 factors={"label_smoothing": 0.0, "mix": False} if factors is None else factors)


def test_a_factor_at_its_default_keeps_the_key_of_the_study_without_it():
    plain = expand(Study("s", TrainConfig(epochs=1), [Section("A", [Cell("x")])]))
    declared = expand(_study([Cell("x"), Cell("ls", label_smoothing=0.1)]))
    assert declared[0].key == plain[0].key  # declaring a factor reruns nothing stored
    assert declared[1].key != plain[0].key
    assert declared[0].config.factors == {"label_smoothing": 0.0, "mix": False}
    assert declared[1].config.factors["label_smoothing"] == 0.1
    assert declared[1].config.factors.changed() == {"label_smoothing": 0.1}


def test_cells_axes_grids_and_fixed_set_factors_like_fields():
    specs = expand(_study(grid(label_smoothing=[0.0, 0.1], mix=[False, True]),
                          fixed={"lr": 0.1}))
    assert [(s.config.factors["label_smoothing"], s.config.factors["mix"]) for s in specs] == [
        (0.0, False), (0.0, True), (0.1, False), (0.1, True)]
    assert len({s.key for s in specs}) == 4 and {s.config.lr for s in specs} == {0.1}
    fixed = expand(_study(vary("lr", [0.01, 0.1]), fixed={"mix": True}))
    assert all(s.config.factors["mix"] for s in fixed)
    # an int for a float factor is the same job as the float
    assert (expand(_study([Cell("a", label_smoothing=1)]))[0].key
            == expand(_study([Cell("a", label_smoothing=1.0)]))[0].key)


def test_an_exclusion_matches_a_factor():
    specs = expand(_study(vary("label_smoothing", [0.0, 0.2]),
                          exclude=[Exclude({"label_smoothing": 0.2}, "too much")]))
    assert [s.skip_reason for s in specs] == [None, "too much"]


def test_a_misspelt_factor_names_the_cells_line_and_the_declared_name():
    cell = Cell("y", label_smothing=0.1)
    with pytest.raises(SpecError, match="unknown field 'label_smothing' in cell 'y'; did you "
                                        "mean 'label_smoothing'") as raised:
        _study([cell])
    assert raised.value.origin == (__file__, cell.origin[1])
    with pytest.raises(SpecError, match="factor 'mix' must be bool .* got int 1"):
        _study([Cell("y", mix=1)])


@pytest.mark.parametrize("factors,message", [
    ({"lr": 0.5}, "factor 'lr' shadows the built-in field 'lr'"),
    ({"status": "x"}, "factor 'status' is a column of every result"),
    ({"x": None}, "factor 'x' has default None of type NoneType"),
    ({"device": "a"}, "factor 'device' is a column of every result"),
    ({"val_x": 1}, "val_ is the validation split's prefix"),
    ({"x": float("nan")}, "has default nan"),
    ({"not a name": 1}, "must be a Python identifier"),
    ([("x", 1)], "factors must be a dict"),
])
def test_bad_declarations_are_refused(factors, message):
    with pytest.raises(SpecError, match=message):
        _study([Cell("x")], factors=factors)


def test_the_baseline_and_cells_cannot_set_factors_as_one_field():
    with pytest.raises(SpecError, match="the baseline sets factors"):
        Study("s", TrainConfig(factors={"a": 1}), [Section("A", [Cell("x")])])
    with pytest.raises(SpecError, match="set each declared factor by its name"):
        Cell("x", factors={"a": 1})


def test_factors_survive_pickling_and_report_a_missing_name():
    import pickle

    config = expand(_study([Cell("x", label_smoothing=0.3)]))[0].config
    again = pickle.loads(pickle.dumps(config))  # what a worker gets
    assert again == config and again.key() == config.key()
    assert again.factors.defaults == {"label_smoothing": 0.0, "mix": False}
    with pytest.raises(KeyError, match="no factor 'label_smothing'; did you mean "
                                       "'label_smoothing'"):
        Factors({"label_smoothing": 0.1})["label_smothing"]


def _sync(store, study):
    specs = expand(study)
    return store.sync_study(study.name, "s.py", "h", "", study.sections, specs,
                            factors=study.factors)


def test_factor_columns_in_the_results_and_a_changed_default_is_refused(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    _sync(store, Study("s", TrainConfig(epochs=1), [Section("A", [Cell("x")])]))
    study = _study(vary("label_smoothing", [0.0, 0.1]))
    _sync(store, study)
    frame = store.results_frame("s")
    # the first job was stored before the factor was declared: it shows the default
    assert list(frame["label_smoothing"]) == [0.0, 0.1]
    assert list(frame["mix"]) == [False, False] and "factors" not in frame
    assert store.study_info("s")["factors"] == {"label_smoothing": 0.0, "mix": False}

    moved = _study(vary("label_smoothing", [0.0, 0.1]),
                   factors={"label_smoothing": 0.1, "mix": False})
    # the job stored before the declaration was recorded with the default it was taken at
    with pytest.raises(StoreError, match="stored with label_smoothing=0.0, and the study now "
                                         "gives that job label_smoothing=0.1"):
        _sync(store, moved)
    assert store.study_info("s")["factors"]["label_smoothing"] == 0.0  # nothing written
    store.close()


def test_factors_cannot_be_changed_in_place():
    config = expand(_study([Cell("x", label_smoothing=0.3)]))[0].config
    with pytest.raises(TypeError, match="read-only"):
        config.factors["label_smoothing"] = 0.5
    with pytest.raises(TypeError, match="read-only"):
        config.factors |= {"label_smoothing": 0.5}
    assert config.factors["label_smoothing"] == 0.3


def test_a_numeric_factor_is_the_section_figures_axis():
    import pandas as pd

    from benchmark.figures import varying_axis

    rows = pd.DataFrame({"lr": [0.1, 0.1, 0.1], "ls": [0.0, 0.1, 0.2], "mix": [False] * 3})
    assert varying_axis(rows, ("ls", "mix")) == "ls"
    assert varying_axis(rows.assign(lr=[0.1, 0.2, 0.3]), ("ls",)) is None  # two vary
    assert varying_axis(rows.assign(mix=[False, True, True]), ("ls", "mix")) is None
