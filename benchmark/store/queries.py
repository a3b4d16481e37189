"""Store stage, the pieces of SQL that several parts share: a study's cell rows joined to
their jobs (`study_cells`), each job's latest run (`latest_runs`), a seed filter, reading
many keys under SQLite's bound-parameter limit (`select_in`), rows as a frame (`frame`),
and the guard of a read on a database that holds no cnnbench tables yet (`stored`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone

from sqlalchemy import and_, func, select

from .tables import CellRow, JobRow, RunRow, SectionRow, StudyRow

BATCH = 500  # keys per IN (...): stays under SQLite's bound-parameter limit


def batches(values: Iterable) -> Iterable[list]:
    """`values`, each once and in order, `BATCH` at a time."""
    values = list(dict.fromkeys(values))
    for i in range(0, len(values), BATCH):
        yield values[i:i + BATCH]


def select_in(s, query, column, values: Iterable) -> list:
    """The rows of `query` where `column` is one of `values`, read `BATCH` values at a time."""
    rows: list = []
    for chunk in batches(values):
        rows += s.execute(query.where(column.in_(chunk))).all()
    return rows


def stored(empty: Callable[[], object]):
    """A read that gives `empty()` on a database without cnnbench's tables (a reader's
    store of a file not made yet, or an empty server database), without a query."""
    def wrap(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if not self.exists:
                return empty()
            return method(self, *args, **kwargs)
        return wrapper
    return wrap


def of_study(query, study: str):
    """`query` over study_cells joined to jobs and studies, narrowed to `study`."""
    return (query.join(JobRow, JobRow.job_id == CellRow.job_id)
            .join(StudyRow, StudyRow.study_id == CellRow.study_id)
            .where(StudyRow.name == study))


def study_cells(study: str, *columns):
    """SELECT `columns` over the (section, cell, seed) rows of `study` joined to their jobs
    and sections, in the study's order (sections, then cells, then seeds)."""
    return (of_study(select(*columns), study)
            .join(SectionRow, and_(SectionRow.study_id == StudyRow.study_id,
                                   SectionRow.name == CellRow.section))
            .order_by(SectionRow.position, CellRow.position, JobRow.seed))


def seed_filter(seeds: Sequence[int] | None) -> list:
    return [] if seeds is None else [JobRow.seed.in_(list(seeds))]


def latest_runs(code_version: str | None = None):
    """Subquery: (run_id, job_id) of each job's most recent finished run (under
    `code_version`, when given)."""
    query = select(func.max(RunRow.run_id).label("run_id"), RunRow.job_id)
    if code_version is not None:
        query = query.where(RunRow.code_version == code_version)
    return query.group_by(RunRow.job_id).subquery()


def frame(rows=(), columns=None):
    """A pandas frame of query rows (pandas imported on first use)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def utc(t: float | None) -> datetime | None:
    """A unix time as the store's naive UTC timestamp."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)
