"""mnist_ablation.py (sections B-K, one seed) with bf16 autocast: the fastest setting.

bf16 is part of every job's key, so these results sit beside the fp32 ones in a shared
database, never mixed with them. studies/precision.py checks that bf16 and fp32 agree
within seed noise.
"""

from mnist_ablation import homework

from benchmark import Study


def study() -> Study:
    return homework("mnist_ablation_bf16", precision="bf16",
                    description="mnist_ablation sections B-K, seed 0, bf16 autocast")
