"""Notebook API: a study's results as two tidy pandas frames, straight from the database.

    from benchmark import load_results
    jobs, epochs = load_results("results/cnnbench.sqlite", "mnist_ablation")

`jobs`: one row per (section, cell, seed) of the study, with every TrainConfig field, the
job key, the job's status, the metrics and provenance of its latest finished run, and
`current` (True where that run is COMPLETE or DIVERGED under this cnnbench's training
code version: not stale; the report's statistics use the COMPLETE ones). `epochs`: one
row per (section, cell, seed, epoch) of those latest runs, with the same identifying
columns and config. `cnnbench export` writes the same two frames. Reads only; never
imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import state
from .config import CONFIG_FIELDS
from .provenance import code_version
from .store import StoreError, open_store

ID_COLUMNS = ["section", "cell", "seed", "job_key"]


def study_name(store, study: str | None) -> str:
    """The name of `study` (a name or a study file; None: the database's only study) as
    stored in `store`; StoreError naming the studies there when it is not."""
    names = store.study_names()
    if study is None:
        if len(names) == 1:
            return names[0]
        raise StoreError(f"{store.url_redacted} holds {len(names)} studies "
                         f"({', '.join(names) or 'none'}): name one")
    if study.endswith(".py") or Path(study).is_file():
        from .studyfile import load_study

        study = load_study(study).study.name
    if study not in names:
        raise StoreError(f"no study {study!r} in {store.url_redacted} (studies there: "
                         f"{', '.join(names) or 'none'})")
    return study


def frames(store, study: str, seeds: Sequence[int] | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (jobs, epochs) frames of a study in an open `ResultStore`; see the module doc."""
    version = code_version()
    jobs = store.results_frame(study, seeds)
    if len(jobs):
        jobs = jobs.assign(current=state.current(jobs, version))
        jobs = jobs[ID_COLUMNS + [c for c in jobs.columns if c not in ID_COLUMNS]]
    epochs = store.epochs_frame(study, seeds)
    if len(epochs) and len(jobs):
        info = store.study_info(study) or {}
        config = [c for c in CONFIG_FIELDS if c not in ("seed", "factors")]
        config += [f for f in info.get("factors", {}) if f in jobs.columns]
        epochs = epochs.drop(columns=["position"]).merge(
            jobs[["section", "cell", "seed", "job_key", "current", *config]],
            on=["section", "cell", "seed"], how="left")
        epochs = epochs[ID_COLUMNS + [c for c in epochs.columns if c not in ID_COLUMNS]]
    return jobs.reset_index(drop=True), epochs.reset_index(drop=True)


def load_results(db: str | Path | None = None, study: str | None = None,
                 seeds: Sequence[int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(jobs, epochs) of `study` (a name or a study file; None: the database's only study)
    in `db` (a SQLite path or any SQLAlchemy URL; None: $CNNBENCH_DB or
    results/cnnbench.sqlite). `seeds` keeps only those replicate seeds. StoreError when
    the database or the study does not exist."""
    store = open_store(None if db is None else str(db), read_only=True)
    try:
        return frames(store, study_name(store, study), seeds)
    finally:
        store.close()
