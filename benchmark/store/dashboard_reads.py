"""Store stage, the dashboard's reads: aggregated in the database so that a page of a
study with ten thousand cell runs stays fast (`perf/dashboard.py` measures it): studies at
a glance, a study's cell runs as `CellRun` records, the marks a reader's update cursor
compares, learning-curve sums and points, what changed since a run, one job in full.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, case, func, select

from ..config import CONFIG_FIELDS
from ..records import JobStatus
from .queries import frame as _frame
from .queries import latest_runs, of_study, select_in, stored, study_cells
from .tables import CellRow, EpochRow, JobRow, LiveEpochRow, RunRow, StudyRow


class CellRun(NamedTuple):
    """One (section, cell, seed) row of a study with its job, latest run and live epochs."""

    section: str
    cell: str
    position: int
    seed: int
    skip_reason: str | None
    job_key: str
    status: str  # as stored
    code_version: str | None  # of the job's latest result
    attempts: int
    epochs: int  # the job's configured epochs
    lease_expires: datetime | None
    runner_host: str | None
    runner_pid: int | None
    updated_at: datetime
    test_accuracy: float | None  # of the latest run
    epochs_done: int | None  # of the latest run
    run_id: int | None  # the latest run
    runs: int | None
    failures: int | None
    live_epochs: int | None  # the running attempt's epochs written so far


class StatusGroup(NamedTuple):
    """A study's cell runs of one stored status and result code version (the overview)."""

    status: str
    code_version: str | None
    skipped: bool
    count: int


class ChangedCell(NamedTuple):
    """A study's cell whose job has a run newer than a reader's mark."""

    job_id: int
    section: str


class DashboardReads:
    """The dashboard's queries (a part of `ResultStore`)."""


    @stored(list)
    def studies_overview(self) -> list[dict]:
        """Per study: its row, cell runs by (stored status, result code version), and the
        last activity (the latest job change of its cells). Aggregated in the database."""
        with self.session() as s:
            studies = s.execute(select(StudyRow.study_id, StudyRow.name, StudyRow.description,
                                       StudyRow.updated_at).order_by(StudyRow.name)).all()
            groups = s.execute(
                select(CellRow.study_id, JobRow.status, JobRow.code_version,
                       (CellRow.skip_reason.is_not(None)).label("skipped"),
                       func.count(), func.max(JobRow.updated_at))
                .join(JobRow, JobRow.job_id == CellRow.job_id)
                .group_by(CellRow.study_id, JobRow.status, JobRow.code_version,
                          CellRow.skip_reason.is_not(None))).all()
        out = {sid: {"name": name, "description": description, "synced_at": synced,
                     "groups": [], "last_activity": None}
               for sid, name, description, synced in studies}
        for sid, status, cv, skipped, count, last in groups:
            row = out[sid]
            row["groups"].append(StatusGroup(status, cv, bool(skipped), count))
            if last is not None and (row["last_activity"] is None or last > row["last_activity"]):
                row["last_activity"] = last
        return list(out.values())

    def _cell_runs_query(self, study: str):
        """(section, cell, seed) rows of a study with their job's state, its latest run,
        its run counts and the epochs its running attempt has written (the dashboard
        reads them by the names of `CellRun`)."""
        counts = (select(RunRow.job_id, func.max(RunRow.run_id).label("run_id"),  # the latest
                         func.count().label("runs"),
                         func.sum(case((RunRow.status == JobStatus.FAILED.value, 1),
                                       else_=0)).label("failures"))
                  .group_by(RunRow.job_id).subquery())
        live = (select(LiveEpochRow.job_id, LiveEpochRow.attempt,
                       func.max(LiveEpochRow.epoch).label("live_epochs"))
                .group_by(LiveEpochRow.job_id, LiveEpochRow.attempt).subquery())
        return (study_cells(study, CellRow.section, CellRow.cell, CellRow.position,
                                 JobRow.seed, CellRow.skip_reason, JobRow.job_key,
                                 JobRow.status, JobRow.code_version, JobRow.attempts,
                                 JobRow.epochs, JobRow.lease_expires, JobRow.runner_host,
                                 JobRow.runner_pid, JobRow.updated_at, RunRow.test_accuracy,
                                 RunRow.epochs_done, RunRow.run_id, counts.c.runs,
                                 counts.c.failures, live.c.live_epochs)
                .outerjoin(counts, counts.c.job_id == JobRow.job_id)
                .outerjoin(RunRow, RunRow.run_id == counts.c.run_id)
                .outerjoin(live, and_(live.c.job_id == JobRow.job_id,
                                      live.c.attempt == JobRow.attempts)))

    @stored(list)
    def cell_runs(self, study: str, changed_after: datetime | None = None) -> list[CellRun]:
        """The study's cell runs (see `_cell_runs_query`); with `changed_after`, only those
        whose job changed since then."""
        query = self._cell_runs_query(study)
        if changed_after is not None:
            query = query.where(JobRow.updated_at > changed_after)
        with self.session() as s:
            return [CellRun(**row._mapping) for row in s.execute(query)]

    @stored(lambda: {"run_id": 0, "live_epoch_id": 0, "updated_at": None})
    def marks(self, study: str) -> dict:
        """Where a study's data stands now: the newest run, live epoch and job change of
        its cells (a reader's cursor: anything newer is what changed)."""
        members = (select(CellRow.job_id).join(StudyRow, StudyRow.study_id == CellRow.study_id)
                   .where(StudyRow.name == study))
        with self.session() as s:
            run_id = s.scalar(select(func.max(RunRow.run_id))
                              .where(RunRow.job_id.in_(members)))
            live_id = s.scalar(select(func.max(LiveEpochRow.live_epoch_id))
                               .where(LiveEpochRow.job_id.in_(members)))
            updated = s.scalar(select(func.max(JobRow.updated_at))
                               .where(JobRow.job_id.in_(members)))
        return {"run_id": run_id or 0, "live_epoch_id": live_id or 0, "updated_at": updated}

    def _curve_query(self, study: str, acc_columns):
        acc = EpochRow.test_accuracy
        return (of_study(select(*acc_columns), study)
                .join(RunRow, RunRow.job_id == JobRow.job_id)
                .join(EpochRow, EpochRow.run_id == RunRow.run_id)
                .where(CellRow.skip_reason.is_(None), acc.is_not(None)))

    @stored(lambda: (_frame(), {}))
    def curve_sums(self, study: str, code_version: str):
        """Per (section, cell, position, epoch): the count, sum and sum of squares of the
        test accuracy of each job's latest run under `code_version` where it is COMPLETE
        (the learning curves' mean and interval across seeds), aggregated in the database;
        and {job id: that run's id}, the runs these sums hold."""
        latest = latest_runs(code_version)
        acc = EpochRow.test_accuracy
        query = (self._curve_query(study, [CellRow.section, CellRow.cell, CellRow.position,
                                           EpochRow.epoch, func.count(acc).label("n"),
                                           func.sum(acc).label("sum"),
                                           func.sum(acc * acc).label("sumsq")])
                 .join(latest, latest.c.run_id == RunRow.run_id)
                 .where(RunRow.status == JobStatus.COMPLETE.value)
                 .group_by(CellRow.section, CellRow.cell, CellRow.position, EpochRow.epoch))
        runs = (select(RunRow.job_id, RunRow.run_id)
                .join(latest, latest.c.run_id == RunRow.run_id)
                .join(CellRow, CellRow.job_id == RunRow.job_id)
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(StudyRow.name == study, RunRow.status == JobStatus.COMPLETE.value)
                .distinct())
        with self.session() as s:
            result = s.execute(query)
            sums = _frame(result.all(), list(result.keys()))
            return sums, dict(s.execute(runs).all())

    def curve_points(self, study: str, run_ids):
        """The test accuracy at each epoch of the runs `run_ids`, once per cell of `study`
        their job serves: a frame of run_id, job_id, section, cell, position, epoch, acc."""
        columns = ["run_id", "job_id", "section", "cell", "position", "epoch", "acc"]
        ids = list(run_ids)
        if not ids or not self.exists:
            return _frame(columns=columns)
        query = self._curve_query(study, [RunRow.run_id, JobRow.job_id, CellRow.section,
                                          CellRow.cell, CellRow.position, EpochRow.epoch,
                                          EpochRow.test_accuracy])
        with self.session() as s:
            rows = select_in(s, query, RunRow.run_id, ids)
        return _frame(rows, columns)

    def latest_complete_runs(self, code_version: str, job_ids) -> dict[int, int]:
        """{job id: its latest run under `code_version`} for `job_ids`, where that run is
        COMPLETE (the run a learning curve holds)."""
        ids = list(job_ids)
        if not ids or not self.exists:
            return {}
        latest = latest_runs(code_version)
        with self.session() as s:
            return dict(select_in(s, select(RunRow.job_id, RunRow.run_id)
                                  .join(latest, latest.c.run_id == RunRow.run_id)
                                  .where(RunRow.status == JobStatus.COMPLETE.value),
                                  RunRow.job_id, ids))

    @stored(list)
    def changed_since(self, study: str, run_id: int) -> list[ChangedCell]:
        """The study's cells whose job has a run newer than `run_id`."""
        newer = select(RunRow.job_id).where(RunRow.run_id > run_id)
        with self.session() as s:
            return [ChangedCell(*r) for r in s.execute(
                select(CellRow.job_id, CellRow.section).distinct()
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(StudyRow.name == study, CellRow.job_id.in_(newer)))]

    @stored(lambda: None)
    def job_detail(self, key: str) -> dict | None:
        """One job: its config and state, every run (provenance, error), the epochs of its
        latest run, the live epochs of its running attempt, and the cells it serves."""
        with self.session() as s:
            job = s.scalar(select(JobRow).where(JobRow.job_key == key))
            if job is None:
                return None
            config = {f: getattr(job, f) for f in CONFIG_FIELDS}
            runs = s.scalars(select(RunRow).where(RunRow.job_id == job.job_id)
                             .order_by(RunRow.run_id)).all()
            run_cols = [c.key for c in RunRow.__table__.columns if c.key != "job_id"]
            runs = [{c: getattr(r, c) for c in run_cols} for r in runs]
            epochs = []
            if runs:
                epochs = [dict(r._mapping) for r in s.execute(
                    select(EpochRow.epoch, EpochRow.train_loss, EpochRow.test_loss,
                           EpochRow.test_accuracy, EpochRow.seconds)
                    .where(EpochRow.run_id == runs[-1]["run_id"]).order_by(EpochRow.epoch))]
            live = [dict(r._mapping) for r in s.execute(
                select(LiveEpochRow.epoch, LiveEpochRow.train_loss, LiveEpochRow.test_loss,
                       LiveEpochRow.test_accuracy, LiveEpochRow.seconds)
                .where(LiveEpochRow.job_id == job.job_id,
                       LiveEpochRow.attempt == job.attempts)
                .order_by(LiveEpochRow.epoch))]
            cells = [dict(r._mapping) for r in s.execute(
                select(StudyRow.name.label("study"), CellRow.section, CellRow.cell)
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(CellRow.job_id == job.job_id))]
            return {"key": key, "config": config, "status": job.status,
                    "code_version": job.code_version, "attempts": job.attempts,
                    "runner_host": job.runner_host, "lease_expires": job.lease_expires,
                    "runner_pid": job.runner_pid, "updated_at": job.updated_at,
                    "runs": runs, "epochs": epochs, "live_epochs": live, "cells": cells}
