"""Reports from a database filled through the store (reports read results only)."""

import re
import subprocess
import sys

import pytest

from benchmark import Cell, Claim, JobStatus, Section, Study, TrainConfig, aggregate, state
from benchmark.plan import expand
from benchmark.records import EpochMetrics, JobResult
from benchmark.state import left_to_run
from benchmark.store import ResultStore, Runner

STUDY = Study("demo", TrainConfig(train_size=100), seeds=[0, 1, 2], sections=[
    Section("C", [Cell("base", published=97.3), Cell("BN", batch_norm=True, published=98.2)],
            title="Batch norm"),
    Section("<script>alert(1)</script>", [Cell("base"), Cell("wide", width=2.0)],
            title="needs escaping & <b>more</b>"),
    Section("G", [Cell("small", train_size=50), Cell("big", train_size=100)], title="Size"),
], claims=[Claim.beats("BN beats base", "C", "BN", "base"),
           Claim.beats("base beats BN", "C", "base", "BN")])


def _fill(db, code_version="v1", fail=(), claims=STUDY.claims, margin=None):
    store = ResultStore(f"sqlite:///{db}")
    specs = expand(STUDY)
    store.sync_study("demo", "demo.py", "ab" * 32, "A demo study", STUDY.sections, specs,
                     claims, margin)
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
    # navigation: contents with anchors, each seed behind each mean, folded tracebacks
    assert "- [C: Batch norm](#s-c-batch-norm)" in md and '<a id="s-c-batch-norm"></a>' in md
    assert "<summary>C: each seed's test accuracy (%)</summary>" in md
    assert "| cell | seed 0 | seed 1 | seed 2 |" in md
    assert re.search(r"\| BN \| 97\.3\d \| 97\.4\d \| 97\.5\d \|", md)  # seeds 0, 1, 2
    assert "traceback</summary>" in md and "```text\nTraceback\nValueError: <bad>\n```" in md
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<nav><strong>Contents</strong><ol><li><a href="#s-summary">Summary</a>' in page
    assert '<h2 id="s-c-batch-norm">C: Batch norm</h2>' in page
    assert "<details><summary>&lt;script&gt;alert(1)&lt;/script&gt;/wide seed 0: FAILED, " \
           "traceback</summary><pre>Traceback\nValueError: &lt;bad&gt;</pre></details>" in page
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
    monkeypatch.setattr("benchmark.cli.reports.code_version", lambda: "v1")  # the fill's version
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
    expected = {"html": "index.html", "md": "report.md"}[formats]
    assert [p.name for p in paths] == [expected]
    other = ({"index.html", "report.md"} - {expected}).pop()
    assert (tmp_path / "o" / expected).is_file() and not (tmp_path / "o" / other).exists()


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


def test_an_unchanged_report_draws_nothing_and_a_changed_figure_is_redrawn(tmp_path,
                                                                            monkeypatch):
    import os
    import sqlite3

    from benchmark import report
    from benchmark.report import write

    _fill(tmp_path / "r.sqlite")
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}", create=False)
    write(store, "demo", tmp_path / "out", ("md",), "v1")
    figures = {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures").iterdir()}
    cached = sorted((tmp_path / "out" / ".figure-cache").glob("*.png"))
    assert len(figures) == len(cached) >= 7  # 3 sections + 3 curves + cost

    def no_drawing(index):
        raise AssertionError("a figure was drawn although its data did not change")

    original = report._plot
    monkeypatch.setattr(report, "_plot", no_drawing)
    write(store, "demo", tmp_path / "out", ("md",), "v1")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures").iterdir()} == figures
    # A changed result redraws the figures that show it (section C's and the cost figure).
    con = sqlite3.connect(tmp_path / "r.sqlite")
    con.execute("update runs set test_accuracy = test_accuracy + 0.5 where job_id = (select "
                "job_id from study_cells where section = 'C' and cell = 'BN' limit 1)")
    con.commit()
    con.close()
    drawn = []
    monkeypatch.setattr(report, "_plot", lambda i: drawn.append(i) or original(i))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # drawn here, where `drawn` sees it
    write(store, "demo", tmp_path / "out", ("md",), "v1")
    assert len(drawn) == 2
    changed = {name for name, png in figures.items()
               if (tmp_path / "out" / "figures" / name).read_bytes() != png}
    assert changed == {"section_C.png", "cost.png"}
    assert len(list((tmp_path / "out" / ".figure-cache").glob("*.png"))) == len(figures)


def test_a_second_report_does_not_even_import_seaborn(tmp_path):
    from benchmark.provenance import code_version

    _fill(tmp_path / "r.sqlite", code_version=code_version())
    script = (
        "import sys, time\n"
        "from benchmark.cli import main\n"
        f"args = ['report', '--db', {str(tmp_path / 'r.sqlite')!r}, '--out', "
        f"{str(tmp_path / 'rep')!r}]\n"
        "main(args, standalone_mode=False)\n"
        "assert 'seaborn' in sys.modules, 'the first report draws with seaborn'\n"
    )
    second = ("import sys\nfrom benchmark.cli import main\n"
              f"main(['report', '--db', {str(tmp_path / 'r.sqlite')!r}, '--out', "
              f"{str(tmp_path / 'rep')!r}], standalone_mode=False)\n"
              "assert 'seaborn' not in sys.modules, 'an unchanged report drew a figure'\n")
    for code in (script, second):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr


def test_figure_cache_key_follows_data_and_function():
    import pandas as pd

    from benchmark.figures import cache_key, cost_figure, section_figure

    rows = pd.DataFrame({"cell": ["a", "b"], "test_accuracy": [97.0, 98.0]})
    same = pd.DataFrame({"cell": ["a", "b"], "test_accuracy": [97.0, 98.0]})
    other = pd.DataFrame({"cell": ["a", "b"], "test_accuracy": [97.0, 98.01]})
    key = cache_key(section_figure, ("C", "t", rows))
    assert key == cache_key(section_figure, ("C", "t", same))
    assert key != cache_key(section_figure, ("C", "t", other))
    assert key != cache_key(section_figure, ("C", "t2", rows))
    assert key != cache_key(cost_figure, ("C", "t", rows))


def test_figure_intervals_are_the_tables_t_intervals():
    from benchmark.aggregate import binomial_se
    from benchmark.figures import t_interval, t_interval_or_none

    low, high = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert low == pytest.approx(2 - 4.302653 / 3 ** 0.5) and high == pytest.approx(
        2 + 4.302653 / 3 ** 0.5)
    assert t_interval([97.0]) == pytest.approx((97 - binomial_se(97.0), 97 + binomial_se(97.0)))
    assert binomial_se(97.0) == pytest.approx(100 * (0.97 * 0.03 / 10_000) ** 0.5)
    assert t_interval_or_none([0.5]) == (0.5, 0.5)


def test_power_plans_seeds_for_each_comparison_and_prints_the_run_command(tmp_path, cli,
                                                                          monkeypatch):
    from benchmark import planning

    store = _fill(tmp_path / "r.sqlite")
    monkeypatch.setattr("benchmark.cli.reports.code_version", lambda: "v1")
    db = str(tmp_path / "r.sqlite")
    result = cli("power", "demo", "--db", db)
    assert result.exit_code == 0, result.output
    good = state.usable(store.results_frame("demo"), "v1")
    c = good[good["section"] == "C"]
    d = (c[c["cell"] == "BN"]["test_accuracy"].to_numpy()
         - c[c["cell"] == "base"]["test_accuracy"].to_numpy())  # same seeds, same order
    # the comparison a claim makes is planned once, as the claim, at the level of the
    # claims' family (two claims: 0.05 / 2)
    assert "C: BN vs base" not in result.output and "BN beats base" in result.output
    sd = max(d.std(ddof=1), aggregate.resolution(good))  # spread floored at one image
    line = next(x for x in result.output.splitlines() if x.startswith("BN beats base"))
    assert f"{d.mean():+.2f}" in line and f"{sd:.2f}" in line
    assert "decided" in line  # +1 pp on every seed
    # --effect plans for a given difference instead: 0.01 pp against this spread
    small = cli("power", "demo", "--db", db, "--effect", "0.01")
    line = next(x for x in small.output.splitlines() if x.startswith("BN beats base"))
    n, diff, shown_sd, level, power, seeds = line[44:].split()[:6]
    assert float(level) == pytest.approx(0.025)
    needed = planning.seeds_needed(0.01, sd, 0.8, 0.025)
    assert (n, seeds) == ("3", str(needed)) and float(power) == pytest.approx(
        planning.paired_power(0.01, sd, 3, 0.025), abs=0.005)
    # a section whose cells differ only by noise: undecided, with the command that settles it
    g = cli("power", "demo", "--db", db, "--effect", "0.05")
    assert "seeds that settle the undecided comparisons" in g.output, g.output
    line = next(x for x in g.output.splitlines() if x.startswith("G: big vs small"))
    n = int(line[44:].split()[5])
    assert f"cnnbench run demo.py --seeds 0-{n - 1}   # 1 of 1" in g.output
    assert cli("power", "nope", "--db", db).exit_code == 2
    assert cli("power", "demo", "--db", db, "--power", "2").exit_code == 2


def test_markup_in_a_study_name_and_texts_is_escaped_in_the_html():
    from benchmark.report import Part, render_html

    name = '<script>alert("x")</script> & co'
    page = render_html(name, [Part("h2", "<b>A</b>"), Part("p", "1 < 2 & 3 > 2")])
    assert "<script>alert" not in page and "<b>A</b>" not in page
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"
    assert f"<title>{escaped}</title>" in page and f"<h1>{escaped}</h1>" in page
    assert "&lt;b&gt;A&lt;/b&gt;" in page and "<p>1 &lt; 2 &amp; 3 &gt; 2</p>" in page


def test_a_study_margin_and_an_equivalence_claim_reach_the_report(tmp_path):
    from benchmark.report import write

    claims = (*STUDY.claims, Claim.equivalent("width does not matter", "G", "big", "small",
                                              0.5))
    store = _fill(tmp_path / "r.sqlite", claims=claims, margin=0.25)
    info = store.study_info("demo")
    assert info["margin_pp"] == 0.25 and info["claims"][-1].margin == 0.5
    (md,) = write(store, "demo", tmp_path / "o", ("md",), "v1")
    text = md.read_text()
    assert "Smallest effect of interest: ±0.25 pp" in text
    assert "| width does not matter | G |" in text


def test_power_with_a_margin_plans_the_seeds_that_show_equivalence(tmp_path, cli,
                                                                   monkeypatch):
    from benchmark import planning

    store = _fill(tmp_path / "r.sqlite", margin=0.25)
    monkeypatch.setattr("benchmark.cli.reports.code_version", lambda: "v1")
    result = cli("power", "demo", "--db", str(tmp_path / "r.sqlite"))
    assert result.exit_code == 0, result.output
    assert "TOST: seeds to show equivalence within the margin" in result.output
    good = state.usable(store.results_frame("demo"), "v1")
    g = good[good["section"] == "G"]
    d = (g[g["cell"] == "big"]["test_accuracy"].to_numpy()
         - g[g["cell"] == "small"]["test_accuracy"].to_numpy())
    line = next(x for x in result.output.splitlines() if x.startswith("G: big vs small"))
    expected = planning.tost_seeds_needed(d.mean(), d.std(ddof=1), 0.25)
    assert line[44:].split()[5] == str(expected), line


def test_report_folders_are_readable_unique_and_short_for_any_name():
    """Study names are free text: "α_run" and "β_run" wrote to one folder (reports/run),
    "études_Ω_🚀" to reports/tudes, a 200-character name past the file system's limit."""
    from benchmark.figures import slug

    names = ["mnist_quick", "α_run", "β_run", "études_Ω_🚀", "a b", "a_b", "研" * 200, ".."]
    folders = [slug(n) for n in names]
    assert len(set(folders)) == len(names), folders
    assert folders[:3] == ["mnist_quick", "α_run", "β_run"]  # a name that is one stays
    assert folders[3].startswith("études_Ω-") and folders[5] == "a_b"
    assert all(0 < len(f.encode()) <= 100 and "/" not in f and not f.startswith(".")
               for f in folders)
