"""cnnbench: ablation studies of CNNs on MNIST, with a result database.

What a study file needs is importable from here:

    from benchmark import (Cell, Claim, Exclude, Section, Study, TrainConfig, grid, product,
                           vary, zipped)

and, for a notebook, the results of a study as two tidy pandas frames:

    from benchmark import load_results
    jobs, epochs = load_results("results/cnnbench.sqlite", "mnist_quick")
"""

from .config import SpecError, TrainConfig
from .records import JobStatus
from .study import Cell, Claim, Exclude, Section, Study, grid, product, vary, zipped

__all__ = ["Cell", "Claim", "Exclude", "JobStatus", "Section", "SpecError", "Study", "TrainConfig",
           "grid", "load_results", "product", "vary", "zipped"]


def __getattr__(name: str):
    # load_results needs pandas and SQLAlchemy: imported on first use, so a study file's
    # `from benchmark import Study` stays light.
    if name == "load_results":
        from .results import load_results

        return load_results
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
__version__ = "0.1.0"
