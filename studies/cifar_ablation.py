"""The homework's factors on CIFAR-10, for users with the data (`cnnbench data --fetch
cifar10`, through torchvision's download, verified against the published MD5 of every
batch file).

CIFAR-10: 32x32 colour images of 10 classes, 50k training and 10k test images, the
standard small-CNN benchmark. The questions of studies/mnist_ablation.py, asked again
where they are harder: BN (C), dropout (D), two 3x3 convs vs one 5x5 (E), width (F),
training-set size (G, up to all 50k), ReLU vs sigmoid (J, on all 50k) and SGD vs Adam (K).
The built-in nets take the three colour channels as input; normalisation is per channel,
from the training split. H (slices of 10k from six offsets) and I (seeds on the full set)
are left out: CIFAR-10 has 50k training images, and three paired seeds per cell replace I.

Full size: 20 epochs, as the homework; on 2 CPU cores this is many hours (`cnnbench run
studies/cifar_ablation.py --dry-run` estimates it on your slots): it is meant for a GPU
(`--devices cuda:0x4`, `--fuse 3`) or a cluster (`--backend slurm`).
"""

import dataclasses

from mnist_ablation import SK02, homework

from benchmark import Section, Study, vary

SIZES = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000]


def study() -> Study:
    base = homework("cifar_ablation", seeds=range(3), only="BCDEFJK", published=False,
                    dataset="cifar10", full_size=50_000,
                    description="homework sections B-G, J, K on CIFAR-10; 20 epochs, "
                                "seeds 0-2")
    sizes = Section("G", vary("train_size", SIZES), fixed=SK02,
                    title="Training-set size (SK0.2, first N samples)")
    sections = [s for s in base.sections if s.name < "G"] + [sizes] + [
        s for s in base.sections if s.name > "G"]
    return dataclasses.replace(base, sections=sections)
