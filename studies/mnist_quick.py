"""The mnist_ablation sections shrunk to run in a few minutes on 2 CPU cores.

Same nets, optimizers, sections and interpretation choices as mnist_ablation.py, with
every training-set size divided by 10 (offsets of H unchanged), 3 epochs instead of 20,
and three seeds in section I. No published numbers are attached: they belong to the
full-size settings, and the quick study is for trying the tool, not for comparing.
"""

from mnist_ablation import homework

from benchmark import Study


def study() -> Study:
    return homework("mnist_quick", epochs=3, scale=0.1, seeds_i=[0, 1, 12], published=False,
                    description="mnist_ablation shrunk: training sets /10, 3 epochs")
