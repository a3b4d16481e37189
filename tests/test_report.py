"""Reports from a database filled through the store (reports read results only)."""

import subprocess
import sys

import pytest

from benchmark import Cell, Claim, JobStatus, Section, Study, TrainConfig
from benchmark.plan import expand
from benchmark.runner import left_to_run
from benchmark.spec import EpochMetrics, JobResult
from benchmark.store import ResultStore, Runner

STUDY = Study("demo", TrainConfig(train_size=100), seeds=[0, 1, 2], sections=[
    Section("C", [Cell("base", published=97.3), Cell("BN", batch_norm=True, published=98.2)],
            title="Batch norm"),
    Section("<script>alert(1)</script>", [Cell("base"), Cell("wide", width=2.0)],
            title="needs escaping & <b>more</b>"),
    Section("G", [Cell("small", train_size=50), Cell("big", train_size=100)], title="Size"),
], claims=[Claim.beats("BN beats base", "C", "BN", "base"),
           Claim.beats("base beats BN", "C", "base", "BN")])


def _fill(db, code_version="v1", fail=()):
    store = ResultStore(f"sqlite:///{db}")
    specs = expand(STUDY)
    store.sync_study("demo", "demo.py", "ab" * 32, "A demo study", STUDY.sections, specs,
                     STUDY.claims)
    runner = Runner("r", "h", 1)
    left = left_to_run(specs, store.job_states([s.key for s in specs], code_version))
    for n, key in enumerate(sorted(left)):
        store.claim(key, runner, code_version)
        config = next(s.config for s in specs if s.key == key)
        if config.width in fail:
            store.record(JobResult(key, JobStatus.FAILED, error="Traceback\nValueError: <bad>",
                                   code_version=code_version), runner)
            continue
        acc = 97.0 + config.batch_norm + 0.1 * config.seed + 0.01 * (n % 3)
        epochs = tuple(EpochMetrics(e, 0.5 / e, 0.4 / e, acc - 2 / e, 1.0) for e in (1, 2, 3))
        store.record(JobResult(key, JobStatus.COMPLETE, epochs=epochs, param_count=431080,
                               train_seconds=3.0, wall_seconds=4.0, started_at=0.0,
                               finished_at=4.0, device="cpu", host="h",
                               code_version=code_version, versions={"torch": "2.x"}), runner)
    return store


def test_report_files_hold_section_tables_figures_and_provenance(tmp_path, cli):
    _fill(tmp_path / "r.sqlite", fail=(2.0,))
    from benchmark.report import write

    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}", create=False)
    paths = write(store, "demo", tmp_path / "out", ("md", "html"), "v1")
    md = (tmp_path / "out" / "report.md").read_text()
    assert [p.name for p in paths] == ["report.md", "index.html"]
    assert "## Reproduced vs published" in md
    assert "| C | base | 97.3 |" in md and "| C | BN | 98.2 |" in md
    assert "## C: Batch norm" in md and "## G: Size" in md
    assert "| BN | base |" in md and "paired t, 3 seeds" in md
    assert "![C: test accuracy by cell](figures/section_C.png)" in md
    assert (tmp_path / "out" / "figures" / "section_C.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Missing and failed" in md and "ValueError: <bad>" in md
    assert "| BN beats base | C | holds |" in md and "| base beats BN | C | contradicted |" in md
    assert "| code versions in results | v1 |" in md
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 4  # self-contained
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>more</b>" not in page and "ValueError: &lt;bad&gt;" in page


def test_results_of_older_code_are_flagged_not_mixed_in(tmp_path):
    _fill(tmp_path / "r.sqlite", code_version="old")
    from benchmark.report import write

    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}", create=False)
    write(store, "demo", tmp_path / "out", ("md",), "new")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "STALE (code old, now new)" in md
    assert "No current results yet." in md and "## Reproduced vs published" not in md


def test_report_command_writes_files_and_refuses_unknown_studies(tmp_path, cli, monkeypatch):
    _fill(tmp_path / "r.sqlite")
    monkeypatch.setattr("benchmark.cli.code_version", lambda: "v1")  # the fill's version
    ok = cli("report", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "rep"))
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "rep" / "demo" / "index.html").exists()
    md = (tmp_path / "rep" / "demo" / "report.md").read_text()
    assert "STALE" not in md and "| C | BN |" in md  # current results, not stale ones
    bad = cli("report", "nope", "--db", str(tmp_path / "r.sqlite"))
    assert bad.exit_code == 2 and "no study 'nope'" in bad.output and "demo" in bad.output
    empty = cli("report", "--db", str(tmp_path / "none.sqlite"))
    assert empty.exit_code == 2 and "run `cnnbench run STUDY` first" in empty.output
    assert cli("report", "--format", "pdf").exit_code == 2


def test_report_path_never_imports_torch(tmp_path):
    _fill(tmp_path / "r.sqlite")
    script = (
        "import sys\n"
        "from benchmark.cli import main\n"
        f"main(['report', '--db', {str(tmp_path / 'r.sqlite')!r}, '--out', "
        f"{str(tmp_path / 'rep')!r}], standalone_mode=False)\n"
        f"main(['status', {str(tmp_path / 'nothing.py')!r}, '--db', "
        f"{str(tmp_path / 'r.sqlite')!r}], standalone_mode=False)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    (tmp_path / "nothing.py").write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n"
        "def study():\n"
        "    return Study('demo', TrainConfig(), [Section('A', [Cell('x')])])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "rep" / "demo" / "report.md").exists()


@pytest.mark.parametrize("formats", ["md", "html"])
def test_single_format(tmp_path, formats):
    _fill(tmp_path / "r.sqlite")
    from benchmark.report import write

    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}", create=False)
    paths = write(store, "demo", tmp_path / "o", (formats,), "v1")
    assert len(paths) == 1


def test_export_writes_tidy_tables(tmp_path, cli):
    import pandas as pd

    _fill(tmp_path / "r.sqlite")
    result = cli("export", "demo", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    jobs = pd.read_csv(tmp_path / "demo_jobs.csv")
    epochs = pd.read_csv(tmp_path / "demo_epochs.csv")
    assert len(jobs) == 18 and {"section", "cell", "seed", "test_accuracy", "width"} <= set(jobs)
    assert set(epochs["epoch"]) == {1, 2, 3}
    assert {"job_key", "width", "current"} <= set(epochs)  # the frames of load_results
    assert cli("export", "nope", "--db", str(tmp_path / "r.sqlite")).exit_code == 2


def test_load_results_gives_one_row_per_cell_seed_and_epoch_marking_current_ones(tmp_path):
    from benchmark import load_results
    from benchmark.provenance import code_version
    from benchmark.store import StoreError

    db = tmp_path / "r.sqlite"
    _fill(db, code_version=code_version(), fail=(2.0,))
    jobs, epochs = load_results(db, "demo")
    assert len(jobs) == 18 and list(jobs.columns[:4]) == ["section", "cell", "seed", "job_key"]
    assert jobs.groupby(["section", "cell", "seed"]).size().max() == 1
    failed = jobs["width"] == 2.0  # FAILED: in the frame, not current
    assert set(jobs.loc[failed, "status"]) == {"FAILED"} and not jobs.loc[failed, "current"].any()
    assert jobs.loc[~failed, "current"].all()
    assert len(epochs) == 3 * 15 and epochs["current"].all()  # failed runs have no epochs
    per_run = epochs.groupby(["section", "cell", "seed"])["epoch"].apply(list)
    assert len(per_run) == 15 and all(e == [1, 2, 3] for e in per_run)
    assert load_results(db, "demo", seeds=[1])[0]["seed"].unique().tolist() == [1]
    assert load_results(db)[0].equals(jobs)  # the database's only study
    with pytest.raises(StoreError, match=r"no study 'nope' .* \(studies there: demo\)"):
        load_results(db, "nope")
    with pytest.raises(StoreError, match="no such database"):
        load_results(tmp_path / "typo.sqlite", "demo")
    assert not (tmp_path / "typo.sqlite").exists()


def _numbered_figure(i: int):
    import os

    from benchmark.report import Figure

    return Figure(name=f"f{i}", title=str(os.getpid()), png=bytes([i]))


def test_figures_are_drawn_in_forked_workers_in_order(monkeypatch):
    import os

    from benchmark.report import Part, render_figures

    parts = [Part("figure", plot=(_numbered_figure, (i,))) for i in range(8)]
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # 8 figures, 2 cores: a pool of 2
    render_figures(parts)
    assert [p.figure.name for p in parts] == [f"f{i}" for i in range(8)]
    assert all(p.plot is None and p.figure.png == bytes([i]) for i, p in enumerate(parts))
    drawn_by = {p.figure.title for p in parts}
    assert str(os.getpid()) not in drawn_by and len(drawn_by) >= 1  # forked workers drew them
    few = [Part("figure", plot=(_numbered_figure, (i,))) for i in range(3)]
    render_figures(few)  # too few to pay for a pool: drawn here
    assert {p.figure.title for p in few} == {str(os.getpid())}
