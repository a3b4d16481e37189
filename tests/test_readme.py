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
