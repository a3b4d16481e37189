"""Does augmentation help, and how does it interact with data size and BN? Fashion-MNIST.

Fashion-MNIST (28x28 grey clothing, 60k/10k) is where flips and small shifts make sense:
a shirt mirrored left-right is still a shirt (MNIST's digits are not mirror-symmetric).
`augment="flip+crop"`: each training image mirrored with probability 1/2 and shifted by up
to 3 pixels (a random 28x28 crop of the image padded by reflection), drawn per batch on
the device from the job's seed.

- Section A, augmentation x training-set size: none vs flip+crop on the first 1k, 4k, 15k
  and all 60k training samples. Every size gets about the same number of SGD steps (30
  epochs of 1k, 15 of 4k, 8 of 15k, 4 of 60k), so that the small sets are not just
  undertrained; the comparison is within each size, at equal epochs.
- Section B, augmentation x BN: none vs flip+crop for the base net with and without BN, on
  10k samples, 8 epochs.
- Section C, longer training: A's 15k and 60k cells at three times the epochs (24 and
  12): does augmentation's cost shrink, or turn into a gain, as the nets fit further?

Base net (5x5 convs, 20 and 50 channels, fc 500), SGD lr 0.01 momentum 0.5 as in the
homework, batch 64, three paired seeds. bf16 autocast, as accurate as fp32 here (see
studies/precision.py) and fastest where the CPU has native bf16; on a CPU without it, set
precision="fp32".
"""

from benchmark import Cell, Claim, Section, Study, TrainConfig

BASE = TrainConfig(arch="base", dataset="fashion-mnist", batch_size=64, lr=0.01,
                   momentum=0.5, precision="bf16")
SIZES = [(1_000, 30), (4_000, 15), (15_000, 8), (60_000, 4)]  # samples, epochs
KINDS = ("none", "flip+crop")


def _n(size: int) -> str:
    return f"{size // 1000}k"


def study() -> Study:
    by_size = Section("A", [Cell(f"{_n(n)} {kind}", train_size=n if n < 60_000 else None,
                                 epochs=epochs, augment=kind)
                            for n, epochs in SIZES for kind in KINDS],
                      title="Augmentation x training-set size (about equal SGD steps)")
    by_bn = Section("B", [Cell(f"{'BN' if bn else 'base'} {kind}", batch_norm=bn,
                               train_size=10_000, epochs=8, augment=kind)
                          for bn in (False, True) for kind in KINDS],
                    title="Augmentation x batch norm (10k samples, 8 epochs)")
    longer = Section("C", [Cell(f"{_n(n)} x{3 * epochs} {kind}",
                                train_size=n if n < 60_000 else None, epochs=3 * epochs,
                                augment=kind)
                           for n, epochs in SIZES[2:] for kind in KINDS],
                     title="Longer training: 15k and 60k samples at 3x the epochs of A")
    claims = [Claim.beats(f"flip+crop helps on {_n(n)} samples", "A", f"{_n(n)} flip+crop",
                          f"{_n(n)} none") for n, _ in SIZES]
    claims += [Claim.beats("flip+crop helps the base net", "B", "base flip+crop", "base none"),
               Claim.beats("flip+crop helps the BN net", "B", "BN flip+crop", "BN none"),
               Claim.beats("BN helps without augmentation", "B", "BN none", "base none")]
    claims += [Claim.beats(f"flip+crop helps on {_n(n)} samples at {3 * e} epochs", "C",
                           f"{_n(n)} x{3 * e} flip+crop", f"{_n(n)} x{3 * e} none")
               for n, e in SIZES[2:]]
    return Study(
        name="augmentation",
        description="flip+crop vs none against training-set size (1k-60k), against BN and "
                    "with 3x the epochs; "
                    "Fashion-MNIST, base net, SGD, bf16, seeds 0-2",
        baseline=BASE, seeds=range(3), sections=[by_size, by_bn, longer], claims=claims)
