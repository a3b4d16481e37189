"""The homework's paired claims on MNIST, settled with the fewest seeds.

    cnnbench run studies/mnist_sequential.py --until-decided --max-seeds 11 --batch 2

Sections C (BN), D (dropout on the logits, with and without BN), E (two 3x3 convs against
one 5x5) and K (Adam against SGD) at the settings of studies/mnist_transfer.py (the first
10k training samples, 10 epochs, batch 64, the homework's SGD), in fp32: bf16 is as
accurate (studies/precision.py) but emulated, 9x slower, on CPUs without native bf16.
Seeds 0-2 first; then two more at a time to the cells of the claims still undecided, up
to 11 (looks at 3, 5, 7, 9, 11), each claim decided by the group-sequential rule of
`benchmark.decisions` at family-wise alpha 0.05 over the five claims.

Margin 0.3 pp, the smallest effect of interest: 30 of the 10,000 test images, about two
standard errors of a single evaluation at 98% accuracy (0.14 pp): a difference smaller
than that cannot be told from the test set's own sampling noise in one run, so a claim
whose difference is shown to lie within it is "equivalent", not "holds".
"""

import dataclasses

from mnist_ablation import homework

from benchmark import Study


def study() -> Study:
    base = homework("mnist_sequential", seeds=range(3), only="CDEK", epochs=10,
                    published=False, precision="fp32", dataset="mnist",
                    description="homework sections C, D, E, K on MNIST; 10k samples, "
                                "10 epochs, fp32; sequential seeds, margin 0.3 pp")
    return dataclasses.replace(base, margin_pp=0.3)
