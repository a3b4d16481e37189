"""`cnnbench run --until-decided`: seeds added a batch at a time to the claims still
undecided, on real (tiny) training jobs; the rule replayed from the stored results."""

import json
import sqlite3

from benchmark import decisions


def _seeds_by_cell(db):
    rows = sqlite3.connect(db).execute(
        "select c.section, c.cell, count(distinct j.seed) from study_cells c join jobs j "
        "on j.job_id = c.job_id join runs r on r.job_id = j.job_id where r.status = "
        "'COMPLETE' group by c.section, c.cell").fetchall()
    return {(s, c): n for s, c, n in rows}


def test_claims_stop_early_and_a_rerun_trains_nothing(workdir, cli):
    db = workdir / "r.sqlite"
    args = ("run", "sequential.py", "--db", str(db), "--jobs", "2", "--until-decided",
            "--max-seeds", "9", "--batch", "2")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    # the large effect is decided at the first look; the same job twice (every difference
    # 0, but on a small test set whose one-image resolution is coarse against the margin)
    # a look later
    assert ("look at 3 seeds: 1 of 2 claims decided; a working rate beats one that learns "
            "nothing: better at 3 seeds; 1 go on, 2 job(s) for the next look") in result.output
    assert "one job is equivalent to itself: equivalent at 5 seeds" in result.output
    seeds = _seeds_by_cell(db)
    assert seeds[("A", "good")] == seeds[("A", "stuck")] == 3  # decided at once
    assert seeds[("B", "x")] == 5 < 9 and seeds[("C", "wide")] == 3  # stopped early
    design = json.loads(sqlite3.connect(db).execute(
        "select design from studies where name = 'sequential'").fetchone()[0])
    assert design["looks"] == [3, 5, 7, 9] and design["claims"] == 2
    assert design["spending"] == decisions.DEFAULT_SPENDING and design["seeds"][:3] == [0, 1, 2]
    assert design["claimed"][1] == ["equivalent", "B", "same job", "x", 1.0]
    runs = sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0]
    again = cli(*args)
    assert again.exit_code == 0 and "Nothing to run" in again.output, again.output
    assert sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] == runs
    # the report analyses the design that was run, in words
    report = cli("report", "sequential", "--db", str(db), "--format", "md",
                 "--out", str(workdir / "rep"))
    assert report.exit_code == 0, report.output
    md = (workdir / "rep" / "sequential" / "report.md").read_text()
    assert "Sequential design (cnnbench run --until-decided)" in md
    assert "![claims at every look of the sequential run](figures/sequential.png)" in md
    row = next(x for x in md.splitlines() if x.startswith("| a working rate beats"))
    assert "| holds |" in row and "at look 1 of 4 (3 seeds), repeated 97.5% CI" in row
    row = next(x for x in md.splitlines() if x.startswith("| one job is equivalent"))
    assert "| holds |" in row and "+0.00 pp at look 2 of 4 (5 seeds)" in row
    assert "## Method" in md and "closed test" in md
    # the error rates it promises, as measured (benchmark/error_rates.json), not assumed
    assert "family-wise false better/worse with every difference 0 0.0" in md
    assert "95% Monte Carlo interval" in md
    # a plain run would mix a fixed design into the sequential one: refused
    plain = cli("run", "sequential.py", "--db", str(db), "--seeds", "0-7")
    assert plain.exit_code == 2 and "runs a sequential design" in plain.output
    other = cli(*args[:-4], "--max-seeds", "11")
    assert other.exit_code == 2 and "was run with another sequential design" in other.output
    study = workdir / "sequential.py"
    study.write_text(study.read_text().replace("1.0)],", "0.5)],"))
    edited = cli(*args)  # a claim's margin changed mid-run: another design
    assert edited.exit_code == 2 and "another sequential design" in edited.output


def test_a_fixed_n_study_is_not_turned_sequential_after_the_fact(workdir, cli):
    db = workdir / "r.sqlite"
    fixed = cli("run", "sequential.py", "--db", str(db), "--jobs", "2", "--seeds", "0-3")
    assert fixed.exit_code == 0, fixed.output
    late = cli("run", "sequential.py", "--db", str(db), "--until-decided")
    assert late.exit_code == 2 and "already holds seeds 3-3 beyond its own" in late.output


def test_first_looks_trained_by_another_study_are_used_not_mistaken_for_a_stall(workdir,
                                                                                 cli):
    """Its first-look jobs already done under another study: the first round trains
    nothing, and the run goes on to the next look (it used to stop with "the next look
    needs results this run cannot train", which was not true)."""
    db = workdir / "r.sqlite"
    study = workdir / "sequential.py"
    (workdir / "warmup.py").write_text(study.read_text().replace('name="sequential"',
                                                                 'name="warmup"'))
    warm = cli("run", "warmup.py", "--db", str(db), "--jobs", "2")
    assert warm.exit_code == 0, warm.output
    result = cli("run", "sequential.py", "--db", str(db), "--jobs", "2", "--until-decided",
                 "--max-seeds", "9", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "cannot train" not in result.output
    assert "one job is equivalent to itself: equivalent at 5 seeds" in result.output
    assert _seeds_by_cell(db)[("B", "x")] == 5


def test_ctrl_c_during_an_added_look_resumes_the_design(workdir, cli, monkeypatch):
    """The design is stored once the first look is trained, before any seed beyond the
    study's: a run interrupted while training an added look resumes as the same design
    (it used to be refused as a fixed-n study holding extra seeds)."""
    from benchmark import runner

    db = workdir / "r.sqlite"
    args = ("run", "sequential.py", "--db", str(db), "--jobs", "2", "--until-decided",
            "--max-seeds", "9", "--batch", "2")
    real, rounds = runner.run_study, []

    def interrupted_second_round(*a, **k):
        rounds.append(1)
        if len(rounds) == 2:  # the first added look: as a Ctrl-C mid-look would
            raise runner.Interrupted("interrupted", 0, 0)
        return real(*a, **k)

    monkeypatch.setattr(runner, "run_study", interrupted_second_round)
    stopped = cli(*args)
    assert stopped.exit_code == 130, stopped.output
    assert sqlite3.connect(db).execute(
        "select design from studies where name = 'sequential'").fetchone()[0] is not None
    monkeypatch.setattr(runner, "run_study", real)
    resumed = cli(*args)
    assert resumed.exit_code == 0, resumed.output
    assert "one job is equivalent to itself: equivalent at 5 seeds" in resumed.output
