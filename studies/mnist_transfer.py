"""The MNIST side of studies/fashion_transfer.py: the same grid (sections B-F, J and K of
the homework, 10k samples, 10 epochs, bf16, seeds 0-4) on MNIST, so that

    cnnbench compare mnist_transfer fashion_transfer

compares each cell and each claim across the two datasets at equal settings (the
20-epoch published setting lives in mnist_ablation_seeds.py).
"""

from fashion_transfer import transfer

from benchmark import Study


def study() -> Study:
    return transfer("mnist_transfer", "mnist", "MNIST")
