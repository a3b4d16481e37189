"""Does bf16 autocast change results? fp32 against bf16 on the homework's 10k-sample,
20-epoch jobs (base net and BN net), four paired seeds each.

The report's paired test per section says whether the difference exceeds seed noise.
"""

from mnist_ablation import HOMEWORK

from benchmark import Cell, Section, Study


def study() -> Study:
    cells = [Cell("fp32"), Cell("bf16", precision="bf16")]
    return Study(
        name="precision",
        description="fp32 vs bf16 autocast, 10k training samples, 20 epochs, seeds 0-3",
        baseline=HOMEWORK,
        seeds=[0, 1, 2, 3],
        sections=[
            Section("base", cells, title="Base net"),
            Section("BN", cells, fixed={"batch_norm": True}, title="Base net with BN"),
        ],
    )
