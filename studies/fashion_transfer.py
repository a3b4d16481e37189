"""Does the homework transfer? Sections B-F, J and K of mnist_ablation.py on Fashion-MNIST.

Fashion-MNIST (Zalando: 28x28 grey images of 10 kinds of clothing, 60k/10k, the same
format as MNIST) is the harder drop-in replacement for MNIST. The question: which of the
homework's conclusions on MNIST (BN helps, dropout on the logits helps the base net and
hurts the BN net, two 3x3 convs beat one 5x5, wider is better, ReLU beats sigmoid, Adam
beats SGD) still hold here, beyond seed-to-seed noise? Five paired seeds per cell.

Sizes, chosen so that the grid fits in about 45 minutes on 2 CPU cores (bf16 autocast,
which is as accurate as fp32 here, see studies/precision.py, and fastest where the CPU has
native bf16; on a CPU without it, set precision="fp32"):
- 10 epochs instead of 20 (on MNIST the homework's nets have converged to within about
  0.1-0.2 pp by epoch 10; the comparison, not the last decimal, is the question);
- B-F and K on the first 10k training samples, as on MNIST;
- J (ReLU vs sigmoid, SK0.2) on the same 10k instead of all 60k, so J's ReLU cell is F's
  SK0.2 job (trained once).
Normalisation: Fashion-MNIST's own training-split mean and std (0.2860, 0.3530).
Its MNIST twin, studies/mnist_transfer.py, trains the same grid on MNIST (same sizes,
epochs and seeds), so that `cnnbench compare mnist_transfer fashion_transfer` sets each
cell and claim side by side.
"""

from mnist_ablation import homework

from benchmark import Study


def transfer(name: str, dataset: str, title: str) -> Study:
    """Sections B-F, J and K at this file's sizes on `dataset`."""
    return homework(name, seeds=range(5), only="BCDEFJK", epochs=10, published=False,
                    precision="bf16", dataset=dataset, full_size=10_000,
                    description=f"homework sections B-F, J, K on {title}; 10k samples, "
                                "10 epochs, bf16, seeds 0-4")


def study() -> Study:
    return transfer("fashion_transfer", "fashion-mnist", "Fashion-MNIST")
