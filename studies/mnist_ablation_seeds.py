"""Sections B-F and K of mnist_ablation.py with five seeds per cell (0-4).

Every published claim rests on one seed; five paired seeds show which effects are larger
than seed-to-seed noise. Seed 0 of every cell is the same job as in mnist_ablation.py, so
in a shared database it is trained once. Interpretation choices as in mnist_ablation.py.
"""

from mnist_ablation import homework

from benchmark import Study


def study() -> Study:
    return homework("mnist_ablation_seeds", seeds=range(5), only="BCDEFK",
                    description="mnist_ablation sections B-F and K, seeds 0-4, 20 epochs")
