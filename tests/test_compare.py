"""`cnnbench compare`: two databases, two code versions, two studies."""

import sqlite3

from test_report import _fill


def _lower_bn(db, by: float) -> None:
    """In section C, make every BN result `by` points worse (as another dataset might)."""
    con = sqlite3.connect(db)
    con.execute("update runs set test_accuracy = test_accuracy - ? where job_id in (select "
                "job_id from study_cells where section = 'C' and cell = 'BN')", (by,))
    con.commit()
    con.close()


def test_compare_two_databases_aligns_cells_and_flags_claims_that_disagree(tmp_path, cli):
    _fill(tmp_path / "a.sqlite", code_version="v1")
    _fill(tmp_path / "b.sqlite", code_version="v1")
    _lower_bn(tmp_path / "b.sqlite", 1.5)  # BN: +1 pp on A, -0.5 pp on B
    result = cli("compare", "demo", "demo", "--db", str(tmp_path / "a.sqlite"), "--db-b",
                 str(tmp_path / "b.sqlite"), "--code-a", "v1", "--code-b", "v1",
                 "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    assert "DIFFER  BN beats base: A holds; B contradicted" in result.output
    assert "DIFFER  base beats BN: A contradicted; B holds" in result.output
    md = (tmp_path / "cmp" / "demo_v1_vs_demo_v1" / "report.md").read_text()
    assert "0 of 2 claims reach the same verdict on A and B." in md
    # BN's effect: +1.00 on A, -0.50 on B, and the change is beyond seed noise
    row = next(line for line in md.splitlines() if line.startswith("| C | BN vs base |"))
    cols = [c.strip() for c in row.strip("|").split("|")]
    assert cols[2].startswith("+1.00") and cols[4].startswith("-0.50")
    assert cols[6].startswith("-1.50") and cols[8] == "differs"
    cell = next(line for line in md.splitlines() if line.startswith("| C | BN |"))
    assert "| -1.50 |" in cell and "paired t, 3 seeds" in cell and "| 0.00 [" in cell
    base = next(line for line in md.splitlines() if line.startswith("| C | base |"))
    assert "| +0.00 |" in base
    assert (tmp_path / "cmp" / "demo_v1_vs_demo_v1" / "index.html").exists()


def test_compare_one_study_under_two_code_versions(tmp_path, cli):
    db = tmp_path / "r.sqlite"
    _fill(db, code_version="old")
    _fill(db, code_version="new", fail=(2.0,))  # every job rerun under new code
    result = cli("compare", "demo", "demo", "--db", str(db), "--code-a", "old", "--code-b",
                 "new", "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    md = (tmp_path / "cmp" / "demo_old_vs_demo_new" / "report.md").read_text()
    assert "A = demo @ old (18 current results" in md and "B = demo @ new (15 current" in md
    assert "only on A: <script>alert(1)</script>/wide" in md  # failed under the new code
    assert "2 of 2 claims reach the same verdict" in md


def test_compare_refuses_unknown_studies_and_identical_sides(tmp_path, cli):
    _fill(tmp_path / "r.sqlite")
    db = str(tmp_path / "r.sqlite")
    missing = cli("compare", "demo", "nope", "--db", db)
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output
    same = cli("compare", "demo", "demo", "--db", db)
    assert same.exit_code == 2 and "A and B are the same results" in same.output
    nodb = cli("compare", "demo", "demo", "--db", db, "--db-b", str(tmp_path / "typo.sqlite"))
    assert nodb.exit_code == 2 and "no such database" in nodb.output
    assert not (tmp_path / "typo.sqlite").exists()


def test_with_a_margin_an_effect_that_transfers_says_so(tmp_path, cli):
    """The study's margin: BN's +1 pp on both sides is within +/-0.5 pp of itself (it
    transfers); lowered by 1.5 pp on B it differs."""
    _fill(tmp_path / "a.sqlite", margin=0.5)
    _fill(tmp_path / "b.sqlite", margin=0.5)
    _fill(tmp_path / "c.sqlite", margin=0.5)
    _lower_bn(tmp_path / "c.sqlite", 1.5)

    def bn_row(other):
        out = tmp_path / f"cmp-{other}"
        result = cli("compare", "demo", "demo", "--db", str(tmp_path / "a.sqlite"), "--db-b",
                     str(tmp_path / f"{other}.sqlite"), "--code-a", "v1", "--code-b", "v1",
                     "--out", str(out))
        assert result.exit_code == 0, result.output
        md = (out / "demo_v1_vs_demo_v1" / "report.md").read_text()
        assert "With the margin of ±0.5 pp, an effect transfers" in md
        row = next(line for line in md.splitlines() if line.startswith("| C | BN vs base |"))
        return [c.strip() for c in row.strip("|").split("|")]

    assert bn_row("b")[8] == "the effect transfers: within ±0.5 pp"
    assert bn_row("c")[8] == "differs"
