"""The README's examples run as written (on the suite's small dataset, fewer epochs)."""

import re
import sqlite3
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def _python_blocks() -> dict[str, str]:
    """The README's python blocks that start with a `# studies/NAME.py` line, by NAME."""
    text = README.read_text()
    return {name: code for code, name in
            re.findall(r"```python\n(# studies/(\w+)\.py\n.*?)```", text, re.S)}


def test_the_bring_your_own_network_example_runs(workdir, cli):
    blocks = _python_blocks()
    assert {"mynets", "my_resnet"} <= set(blocks)
    (workdir / "mynets.py").write_text(blocks["mynets"])
    small = blocks["my_resnet"].replace("epochs=5, train_size=10_000",
                                        'epochs=1, train_size=128, dataset="idx"')
    assert small != blocks["my_resnet"], "the example's baseline changed: update this test"
    (workdir / "my_resnet.py").write_text(small)
    result = cli("run", "my_resnet.py", "--jobs", "2", "--db", "r.sqlite")
    assert result.exit_code == 0, result.output
    assert "finished: 9 complete" in result.output
    archs = sqlite3.connect(workdir / "r.sqlite").execute(
        "select arch, batch_norm, count(*) from jobs group by arch, batch_norm").fetchall()
    assert archs == [("base", 0, 3), ("mynets:tiny_resnet", 0, 3), ("mynets:tiny_resnet", 1, 3)]


def test_the_bring_your_own_dataset_example_runs(tmp_path, cli):
    import runpy

    blocks = _python_blocks()
    assert {"make_blobs", "blobs_study"} <= set(blocks)
    (tmp_path / "make_blobs.py").write_text(blocks["make_blobs"])
    runpy.run_path(str(tmp_path / "make_blobs.py"), run_name="__main__")
    small = blocks["blobs_study"].replace("epochs=3", "epochs=1")
    assert small != blocks["blobs_study"], "the example's baseline changed: update this test"
    (tmp_path / "blobs_study.py").write_text(small)
    result = cli("run", "blobs_study.py", "--jobs", "2", "--db", "r.sqlite")
    assert result.exit_code == 0, result.output
    assert "finished: 4 complete" in result.output
    con = sqlite3.connect(tmp_path / "r.sqlite")
    accuracies = [a for (a,) in con.execute("select test_accuracy from runs")]
    assert len(accuracies) == 4 and min(accuracies) > 90.0  # 3 easy classes of 32x32 images
    keys = {k for (k,) in con.execute("select job_key from jobs")}
    con.close()
    # Moved elsewhere, the same files are the same jobs: nothing to train.
    (tmp_path / "blobs").rename(tmp_path / "moved")
    (tmp_path / "blobs_study.py").write_text(small.replace('dataset="blobs"', 'dataset="moved"'))
    again = cli("run", "blobs_study.py", "--db", "r.sqlite")
    assert again.exit_code == 0 and "0 new" in again.output, again.output
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert {k for (k,) in con.execute("select job_key from jobs")} == keys
    con.close()


def test_the_notebook_example_runs_on_a_study_database(workdir, cli):
    text = README.read_text()
    block = re.search(r"```python\n# notebook\n(.*?)```", text, re.S).group(1)
    assert '"mnist_quick"' in block
    result = cli("run", "tiny.py")  # into the default results/cnnbench.sqlite
    assert result.exit_code == 0, result.output
    scope: dict = {}
    exec(block.replace('"mnist_quick"', '"tiny"'), scope)  # noqa: S102 - the README's code
    jobs, epochs = scope["jobs"], scope["epochs"]
    assert len(jobs) == 6 and jobs["current"].all()  # 3 cells x 2 seeds
    assert {"job_key", "seed", "arch", "lr", "dataset", "test_accuracy"} <= set(jobs.columns)
    assert len(epochs) == 6 * 2 and set(epochs["epoch"]) == {1, 2}  # 2 epochs per cell run
    assert {"job_key", "arch", "batch_norm", "train_loss"} <= set(epochs.columns)
    import matplotlib.pyplot as plt

    assert len(plt.gca().get_lines()) >= 3  # seaborn drew a line per cell
    plt.close("all")
    keys = dict(zip(jobs["cell"] + jobs["seed"].astype(str), jobs["job_key"], strict=True))
    assert all(keys[c + str(s)] == k for c, s, k in epochs[["cell", "seed", "job_key"]].values)


def test_the_sql_example_gives_one_row_per_job_under_the_current_code_version(workdir, cli):
    from benchmark.provenance import code_version

    text = README.read_text()
    sql = re.search(r'sqlite3 results/cnnbench.sqlite "(.*?)"\n', text, re.S).group(1)
    version = re.search(r"code_version = '(\w+)'", sql).group(1)
    assert version == code_version(), "the README's SQL names another training version"
    assert cli("run", "tiny.py").exit_code == 0  # 6 cells, 4 distinct jobs
    con = sqlite3.connect(workdir / "results" / "cnnbench.sqlite")
    # a result of other training code for one job: not current, never in the answer
    con.execute("insert into runs (job_id, status, code_version, test_accuracy, "
                "epochs_done) select job_id, 'COMPLETE', 'older', 1.0, 2 from jobs limit 1")
    con.commit()
    rows = con.execute(sql.replace("'mnist_quick'", "'tiny'")).fetchall()
    keys = {k for (k,) in con.execute("select job_key from jobs")}
    con.close()
    assert len(rows) == 4 and {r[0] for r in rows} == keys
    assert all(r[-1] is not None and r[-1] > 1.0 for r in rows)


def test_the_own_factors_pieces_and_metrics_example_runs(workdir, cli):
    blocks = _python_blocks()
    assert {"my_tricks", "my_question"} <= set(blocks)
    (workdir / "my_tricks.py").write_text(blocks["my_tricks"])
    small = blocks["my_question"].replace("epochs=3, train_size=5_000",
                                          'epochs=1, train_size=128, dataset="idx"'
                                          ).replace("val_size=500", "val_size=32")
    assert small.count("dataset=") == 1 and "val_size=32" in small, \
        "the example's baseline changed: update this test"
    (workdir / "my_question.py").write_text(small)
    result = cli("run", "my_question.py", "--jobs", "2", "--db", "r.sqlite")
    assert result.exit_code == 0, result.output
    assert "finished: 15 complete" in result.output  # 5 distinct cells x 3 seeds
    con = sqlite3.connect(workdir / "r.sqlite")
    names = {n for (n,) in con.execute("select distinct name from metrics")}
    assert names == {"confidence", "val_confidence", "val_loss", "val_accuracy"}
    report = cli("report", "my_question", "--db", "r.sqlite", "--format", "md")
    assert report.exit_code == 0, report.output
    text = (workdir / "reports" / "my_question" / "report.md").read_text()
    assert "smoothing lowers confidence" in text and "in confidence (lower is better)" in text
    assert "This section decides on val_accuracy (pp, higher is better)." in text
