import pytest

from benchmark import Cell, Exclude, Section, SpecError, Study, TrainConfig, grid, product, vary
from benchmark.study import zipped


def test_default_config_key_is_pinned():
    # The job key is the identity of every stored result: changing it orphans old results.
    assert TrainConfig().key() == "cc498e6c0ac5fc15"


def test_numbers_are_canonical_so_equal_configs_share_a_key():
    assert TrainConfig(width=1).key() == TrainConfig(width=1.0).key()
    assert TrainConfig(lr=0.01).key() != TrainConfig(lr=0.02).key()
    assert TrainConfig(seed=1).key() != TrainConfig(seed=0).key()


def test_unknown_field_names_the_field_and_suggests():
    with pytest.raises(SpecError, match=r"field 'arhc' in TrainConfig; did you mean 'arch'"):
        TrainConfig(arhc="sk")
    # A name that is no field may be a declared factor: the Study checks it, naming the
    # line that wrote the cell.
    cell = Cell("x", batchnorm=True)
    with pytest.raises(SpecError, match=r"'batchnorm' in cell 'x'; did you mean 'batch_norm'"
                       ) as raised:
        Study("s", TrainConfig(), [Section("A", [cell])])
    assert raised.value.origin == (__file__, cell.origin[1])


@pytest.mark.parametrize("field,value,message", [
    ("epochs", "20", r"field 'epochs' must be int, got str '20'"),
    ("batch_norm", 1, r"field 'batch_norm' must be bool, got int 1"),
    ("lr", "fast", r"field 'lr' must be float"),
    ("optimizer", "adma", r"got 'adma' \(did you mean 'adam'\?\); valid choices: sgd, adam"),
    ("epochs", 0, r"field 'epochs' must be >= 1, got 0"),
    ("train_size", -5, r"field 'train_size' must be >= 1"),
    ("dropout_p", 1.0, r"field 'dropout_p' must be in \[0, 1\)"),
    ("width", 0.001, r"leaves a conv layer with no channels"),
])
def test_bad_values_name_field_value_and_fix(field, value, message):
    with pytest.raises(SpecError, match=message):
        TrainConfig(**{field: value})


def test_empty_axis_and_unequal_zip_are_errors():
    with pytest.raises(SpecError, match="axis 'width' is empty"):
        vary("width", [])
    with pytest.raises(SpecError, match="equal lengths"):
        zipped(train_offset=[0, 1], train_size=[5])
    with pytest.raises(SpecError, match="must be a list"):
        vary("arch", "sk")


def test_grid_is_full_factorial_in_declaration_order_with_published_by_tuple():
    cells = grid(arch=["base", "sk"], batch_norm=[False, True],
                 published={("sk", True): 98.5})
    assert [c.label for c in cells] == [
        "arch=base, batch_norm=False", "arch=base, batch_norm=True",
        "arch=sk, batch_norm=False", "arch=sk, batch_norm=True"]
    assert [c.published for c in cells] == [None, None, None, 98.5]


def test_product_merges_overrides_and_labels():
    cells = product(vary("arch", ["base", "sk"]), vary("seed", [3]))
    assert [c.label for c in cells] == ["arch=base / seed=3", "arch=sk / seed=3"]
    assert cells[1].overrides == {"arch": "sk", "seed": 3}


def test_study_level_errors():
    with pytest.raises(SpecError, match="duplicate section names: \\['A'\\]"):
        Study("s", TrainConfig(), [Section("A", [Cell("x")]), Section("A", [Cell("y")])])
    with pytest.raises(SpecError, match="has no sections"):
        Study("s", TrainConfig(), [])
    with pytest.raises(SpecError, match="duplicate cell labels"):
        Section("A", [Cell("x"), Cell("x")])
    with pytest.raises(SpecError, match="baseline must be a TrainConfig, got dict"):
        Study("s", {"arch": "sk"}, [Section("A", [Cell("x")])])
    with pytest.raises(SpecError, match="seeds repeat"):
        Study("s", TrainConfig(), [Section("A", [Cell("x")])], seeds=[1, 1])
    with pytest.raises(SpecError, match="needs a reason"):
        Exclude({"arch": "sk"}, "")


def test_claims_must_name_existing_sections_and_cells():
    from benchmark import Claim

    sections = [Section("C", [Cell("base"), Cell("BN", batch_norm=True)])]
    Study("s", TrainConfig(), sections, claims=[Claim.beats("ok", "C", "BN", "base")])
    with pytest.raises(SpecError, match="no section 'X'"):
        Study("s", TrainConfig(), sections, claims=[Claim.increasing("x", "X")])
    with pytest.raises(SpecError, match="no cell 'bn' \\(did you mean 'BN'\\?\\)"):
        Study("s", TrainConfig(), sections, claims=[Claim.beats("x", "C", "bn", "base")])
