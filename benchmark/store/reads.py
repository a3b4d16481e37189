"""Store stage, results out: what the runner, `status`, `list`, `report`, `compare`,
`export` and `load_results` read: where jobs stand (`job_states`, by `state.derive`), a
study's rows (`study_info`), its tidy results and epochs frames, and the live epochs of
running attempts. Reads only; pandas is imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, select

from .. import provenance, state
from ..config import CONFIG_FIELDS
from ..outcome import ACCURACY, from_dict
from ..records import JobStatus
from ..state import JobState
from ..study import Claim
from .database import now
from .queries import frame as _frame
from .queries import latest_runs, of_study, seed_filter, select_in, stored, study_cells
from .tables import (
    CellRow,
    ClaimRow,
    EpochRow,
    JobRow,
    LiveEpochRow,
    MetricRow,
    RunRow,
    SectionRow,
    StudyRow,
)

CONFIG_COLUMNS = list(CONFIG_FIELDS)  # every TrainConfig field is a column of `jobs`


def with_factor_columns(frame, declared: dict):
    """`frame`'s `factors` (a dict per job) as one column per factor the study declares
    (after the config columns), the default where a job was stored before its
    declaration; without declarations, no factor columns."""
    values = frame.pop("factors")
    at = frame.columns.get_loc("data_hash") + 1
    for offset, (name, default) in enumerate(declared.items()):
        frame.insert(at + offset, name, [(v or {}).get(name, default) for v in values])
    return frame


def _metrics(s, run_ids: Sequence[int]):
    """The metrics rows of `run_ids` as a frame (run_id, epoch, name, value)."""
    import pandas as pd

    rows = select_in(s, select(MetricRow.run_id, MetricRow.epoch, MetricRow.name,
                               MetricRow.value), MetricRow.run_id, run_ids)
    return pd.DataFrame(rows, columns=["run_id", "epoch", "name", "value"]).astype(
        {"value": float})


class Reads:
    """The readers' queries (a part of `ResultStore`)."""

    @stored(_frame)
    def live_epochs(self, keys=None, *, study: str | None = None, after: int = 0):
        """Epochs of the attempts running now, as the runners wrote them: a frame with
        `live_epoch_id` (increasing: pass the largest seen as `after` to get only what
        came since), `job_key`, `epoch` and the metrics, for `keys` or for every cell of
        `study` (then with `section`, `cell` and `position`: a job serving two cells
        comes twice), in order of arrival."""
        import pandas as pd

        query = (select(LiveEpochRow.live_epoch_id, JobRow.job_key, LiveEpochRow.epoch,
                        LiveEpochRow.train_loss, LiveEpochRow.test_loss,
                        LiveEpochRow.test_accuracy, LiveEpochRow.seconds,
                        LiveEpochRow.written_at)
                 .join(JobRow, JobRow.job_id == LiveEpochRow.job_id)
                 .where(LiveEpochRow.live_epoch_id > after,
                        LiveEpochRow.attempt == JobRow.attempts,
                        JobRow.status == JobStatus.RUNNING.value)
                 .order_by(LiveEpochRow.live_epoch_id))
        if study is not None:  # one row per epoch and cell of the study the job serves
            query = (query.add_columns(CellRow.section, CellRow.cell, CellRow.position)
                     .join(CellRow, CellRow.job_id == JobRow.job_id)
                     .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                     .where(StudyRow.name == study, CellRow.skip_reason.is_(None)))
        columns = [c.key for c in query.selected_columns]
        with self.session() as s:
            rows = (s.execute(query).all() if keys is None else
                    select_in(s, query, JobRow.job_key, keys))
        if not rows:
            return pd.DataFrame()
        return _frame(rows, columns).sort_values("live_epoch_id")

    @stored(list)
    def code_versions(self, study: str) -> list[str]:
        """The training-code versions of the runs of the study's jobs, in order of use."""
        query = (of_study(select(RunRow.code_version, func.min(RunRow.run_id).label("first"))
                          .select_from(CellRow), study)
                 .join(RunRow, RunRow.job_id == JobRow.job_id)
                 .where(RunRow.code_version.is_not(None))
                 .group_by(RunRow.code_version).order_by("first"))
        with self.session() as s:
            return [version for version, _ in s.execute(query)]

    @stored(list)
    def study_names(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(StudyRow.name).order_by(StudyRow.name)))

    @stored(dict)
    def job_states(self, keys, code_version: str) -> dict[str, JobState]:
        """Where each job stands (`state.derive`), by key, whichever study put it in the
        database."""
        latest = latest_runs()
        query = (select(JobRow.job_key, JobRow.status, JobRow.code_version,
                        JobRow.lease_expires, JobRow.runner_host, JobRow.runner_pid,
                        RunRow.test_accuracy)
                 .outerjoin(latest, latest.c.job_id == JobRow.job_id)
                 .outerjoin(RunRow, RunRow.run_id == latest.c.run_id))
        here, t = provenance.host(), now()
        with self.session() as s:
            rows = select_in(s, query, JobRow.job_key, keys)
        return {key: state.derive(status, cv, lease, host, pid, acc, code_version, at=t,
                                  here=here, alive=state.pid_alive)
                for key, status, cv, lease, host, pid, acc in rows}

    @stored(lambda: None)
    def study_info(self, study: str) -> dict | None:
        """The study row (path, file hash, description, last sync) and its sections in order."""
        with self.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == study))
            if row is None:
                return None
            sections = s.execute(select(SectionRow.name, SectionRow.title, SectionRow.note,
                                        SectionRow.outcome)
                                 .where(SectionRow.study_id == row.study_id)
                                 .order_by(SectionRow.position)).all()
            claims = s.scalars(select(ClaimRow).where(ClaimRow.study_id == row.study_id)
                               .order_by(ClaimRow.position)).all()
            outcome = from_dict(row.outcome) or ACCURACY
            return {"name": row.name, "path": row.path, "file_hash": row.file_hash,
                    "description": row.description, "updated_at": row.updated_at,
                    "margin_pp": row.margin_pp, "factors": dict(row.factors or {}),
                    "outcome": outcome,
                    "design": json.loads(row.design) if row.design else None,
                    "sections": [{**dict(r._mapping), "outcome": from_dict(r.outcome) or outcome}
                                 for r in sections],
                    "claims": [Claim(c.text, c.section, c.kind, c.cell, c.baseline, c.margin,
                                     from_dict(c.outcome) or outcome)
                               for c in claims]}

    @stored(_frame)
    def results_frame(self, study: str, seeds: Sequence[int] | None = None,
                      code_version: str | None = None, sections: Sequence[str] | None = None):
        """Tidy pandas frame: one row per (section, cell, seed), config columns, job
        status, and the metrics and provenance of the job's latest finished run (under
        `code_version`, when given: how results of older code are compared with new).
        `seeds` narrows to those seeds, `sections` to those sections."""
        config_cols = [getattr(JobRow, f) for f in CONFIG_COLUMNS]
        latest = latest_runs(code_version)
        query = (study_cells(
                    study, CellRow.section, CellRow.cell, CellRow.position, CellRow.replicate,
                    CellRow.published, CellRow.skip_reason, JobRow.job_key, JobRow.status,
                    *config_cols, RunRow.run_id, RunRow.status.label("run_status"),
                    RunRow.code_version, RunRow.error, RunRow.test_accuracy, RunRow.test_loss,
                    RunRow.train_loss, RunRow.epochs_done, RunRow.param_count,
                    RunRow.train_seconds, RunRow.wall_seconds, RunRow.device, RunRow.host,
                    RunRow.slurm_job_id, RunRow.torch_version, RunRow.cuda_version,
                    RunRow.started_at, RunRow.finished_at)
                 .outerjoin(latest, latest.c.job_id == JobRow.job_id)
                 .outerjoin(RunRow, RunRow.run_id == latest.c.run_id)
                 .where(*seed_filter(seeds),
                        *([] if sections is None else [CellRow.section.in_(list(sections))])))
        with self.session() as s:
            result = s.execute(query)
            frame = _frame(result.all(), list(result.keys()))
            declared = s.scalar(select(StudyRow.factors).where(StudyRow.name == study)) or {}
            metrics = _metrics(s, frame["run_id"].dropna().astype(int).unique().tolist()
                               if len(frame) else [])
        if frame.empty:
            return _frame()
        frame = with_factor_columns(frame, declared)
        frame["metrics"] = frame["metrics"].map(lambda v: tuple(v or ()))  # hashable, as in
        #                                                                     TrainConfig
        if len(metrics):  # each run's values at its last epoch, one column per name
            last = metrics[metrics["epoch"] == metrics.groupby("run_id")["epoch"]
                           .transform("max")]
            wide = last.pivot(index="run_id", columns="name", values="value")
            at = frame.columns.get_loc("wall_seconds") + 1
            merged = frame.merge(wide, left_on="run_id", right_index=True, how="left")
            columns = list(frame.columns)
            frame = merged[columns[:at] + list(wide.columns) + columns[at:]]
        if code_version is not None:  # where that version stands, not the job's latest
            frame["status"] = frame["run_status"].fillna(JobStatus.PENDING.value)
        frame.loc[frame["skip_reason"].notna(), "status"] = JobStatus.SKIPPED.value
        return frame

    @stored(_frame)
    def epochs_frame(self, study: str, seeds: Sequence[int] | None = None):
        """Per-epoch metrics of the latest run of each of the study's jobs, with cell labels."""
        latest = latest_runs()
        query = (of_study(select(CellRow.section, CellRow.cell, CellRow.position, JobRow.seed,
                                 EpochRow.epoch, EpochRow.train_loss, EpochRow.test_loss,
                                 EpochRow.test_accuracy, EpochRow.seconds,
                                 RunRow.code_version, RunRow.run_id), study)
                 .join(latest, latest.c.job_id == JobRow.job_id)
                 .join(RunRow, RunRow.run_id == latest.c.run_id)
                 .join(EpochRow, EpochRow.run_id == RunRow.run_id)
                 .where(CellRow.skip_reason.is_(None), *seed_filter(seeds))
                 .order_by(CellRow.section, CellRow.position, JobRow.seed, EpochRow.epoch))
        with self.session() as s:
            rows = s.execute(query).all()
            metrics = _metrics(s, list({r.run_id for r in rows}))
        frame = _frame([r._mapping for r in rows])
        if len(metrics):  # one column per metric name, NaN where an epoch has none
            wide = metrics.pivot(index=["run_id", "epoch"], columns="name", values="value")
            frame = frame.merge(wide, left_on=["run_id", "epoch"], right_index=True,
                                how="left")
        return frame.drop(columns=["run_id"]) if len(frame) else frame
