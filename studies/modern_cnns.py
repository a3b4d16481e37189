"""The homework's base net against small modern CNNs: VGG-style, Network-in-Network and
residual, each with and without batch normalisation (MNIST).

Question: is a modern block worth its parameters on MNIST, and is batch norm what makes
the difference? The nets are plain user networks defined next to this file in
studies/modern_nets.py and named as arch="modern_nets:FUNCTION": this study is also the
worked example of bringing your own network. The report lists each net's parameter count.

Training, the same for every net so that only the architecture varies: Adam at lr 1e-3
(the robust default across architectures; the homework's SGD at 0.01 with momentum 0.5
starves the deeper nets without BN of progress in a short budget), batch 64, the first
10k MNIST training samples, 5 epochs, bf16 autocast (as accurate as fp32 here; on a CPU
without native bf16 set precision="fp32"), 3 paired seeds. About 15 minutes on 2 cores.
"""

from benchmark import Cell, Claim, Section, Study, TrainConfig

BASE = TrainConfig(arch="base", optimizer="adam", lr=1e-3, batch_size=64, epochs=5,
                   train_size=10_000, precision="bf16")
NETS = [("base", "base"), ("VGG", "modern_nets:vgg"), ("NiN", "modern_nets:nin"),
        ("ResNet", "modern_nets:resnet")]


def study() -> Study:
    cells = [Cell(f"{label}{'+BN' if bn else ''}", arch=arch, batch_norm=bn)
             for label, arch in NETS for bn in (False, True)]
    return Study(
        name="modern_cnns",
        description="homework base net vs VGG-style, NiN and ResNet (user networks), with "
                    "and without BN; MNIST 10k, 5 epochs, Adam 1e-3, bf16, seeds 0-2",
        baseline=BASE,
        seeds=range(3),
        sections=[Section("M", cells, title="Architecture x batch norm")],
        claims=[
            Claim.beats("a VGG-style net beats the base net", "M", "VGG", "base"),
            Claim.beats("a residual net beats the base net", "M", "ResNet", "base"),
            Claim.beats("NiN beats the base net", "M", "NiN", "base"),
            Claim.beats("BN helps the residual net", "M", "ResNet+BN", "ResNet"),
            Claim.beats("BN helps the VGG-style net", "M", "VGG+BN", "VGG"),
            Claim.beats("BN helps NiN", "M", "NiN+BN", "NiN"),
        ],
    )
