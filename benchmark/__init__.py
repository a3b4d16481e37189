"""cnnbench: ablation studies of CNNs on MNIST, with a result database.

What a study file needs is importable from here:

    from benchmark import (Cell, Claim, Exclude, Section, Study, TrainConfig, grid, product,
                           vary, zipped)
"""

from .spec import (
    Cell,
    Claim,
    Exclude,
    JobStatus,
    Section,
    SpecError,
    Study,
    TrainConfig,
    grid,
    product,
    vary,
    zipped,
)

__all__ = ["Cell", "Claim", "Exclude", "JobStatus", "Section", "SpecError", "Study", "TrainConfig",
           "grid", "product", "vary", "zipped"]
__version__ = "0.1.0"
