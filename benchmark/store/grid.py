"""Store stage, the grid: a study's rows (study, sections, claims, cells) and its jobs,
written whole by `sync_study`, with the adoption of jobs stored under the keys of older
cnnbench versions, and the decision rule of a sequential run (`set_design`).

Which cell runs belong to a study is decided above the store (`plan.with_stored_seeds`,
passed in as `membership`): the store reads the seeds it holds and writes what the rule
returns, in one transaction with the study row locked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..outcome import Outcome
from ..records import JobSpec, JobStatus
from ..study import Claim, Section
from .database import StoreError, now
from .queries import select_in, stored
from .retry import retried
from .tables import CellRow, ClaimRow, JobRow, RunRow, SectionRow, StudyRow

LEGACY_NORM = "+mnist-norm"  # code version suffix of runs adopted by `_adopt_path_keys`

Stored = dict[tuple[str, str], dict[int, str]]  # (section, cell) -> {seed: job key}


@dataclass(frozen=True)
class SyncSummary:
    cells: int  # (section, cell, seed) rows of the study
    jobs: int  # distinct job keys of the study
    new_jobs: int  # of which were not yet in the database
    kept_seeds: int = 0  # cell runs of seeds stored earlier that the study file did not name


class Grid:
    """Study and job rows (a part of `ResultStore`)."""

    @retried
    def sync_study(self, name: str, path: str, file_hash: str, description: str,
                   sections: Sequence[Section], specs: Sequence[JobSpec],
                   claims: Sequence[Claim] = (), margin_pp: float | None = None,
                   membership: Callable[[Stored], Sequence[JobSpec]] | None = None,
                   factors: Mapping[str, Any] | None = None,
                   outcome: Outcome | None = None) -> SyncSummary:
        """Write the study's whole grid: new jobs as PENDING (SKIPPED if excluded everywhere).

        The study's cell runs are `membership(stored)` of the seeds the database holds for
        it (the runner passes `plan.with_stored_seeds`: a study never loses seeds), or
        `specs` alone; read and written in one transaction with the study row locked, so
        two runners syncing at once lose nothing. `factors`: the study's declared factors
        and their defaults; a stored job that ran with another value of a factor than the
        job now given its key (a default changed) is a StoreError, nothing written."""
        with self.session() as s:
            self.insert_ignore(s, StudyRow, [dict(name=name, path=path, file_hash=file_hash,
                                                  description=description, updated_at=now())])
            study = s.scalar(select(StudyRow).where(StudyRow.name == name).with_for_update())
            study.path, study.file_hash = path, file_hash
            study.description, study.updated_at = description, now()
            study.margin_pp = margin_pp
            study.factors = dict(factors or {})
            study.outcome = outcome.to_dict() if outcome else None
            members = (list(specs) if membership is None else
                       list(membership(self._stored_seeds(s, study.study_id))))
            needed = {m.key for m in members if m.skip_reason is None}
            configs = {m.key: m.config for m in members}
            s.execute(delete(SectionRow).where(SectionRow.study_id == study.study_id))
            s.add_all(SectionRow(study_id=study.study_id, name=sec.name, position=i,
                                 title=sec.title, note=sec.note,
                                 outcome=sec.outcome.to_dict() if sec.outcome else None)
                      for i, sec in enumerate(sections))
            s.execute(delete(ClaimRow).where(ClaimRow.study_id == study.study_id))
            s.add_all(ClaimRow(study_id=study.study_id, position=i, text=c.text,
                               section=c.section, kind=c.kind, cell=c.cell, baseline=c.baseline,
                               margin=c.margin,
                               outcome=c.outcome.to_dict() if c.outcome else None)
                      for i, c in enumerate(claims))
            self._adopt_path_keys(s, configs)
            self._adopt_earlier_keys(s, members)
            known = self._job_ids(s, configs)
            self._check_factors(s, configs, known)
            new = [k for k in configs if k not in known]
            self.insert_ignore(s, JobRow, [
                dict(job_key=k, **configs[k].to_dict(), updated_at=now(), attempts=0,
                     status=(JobStatus.PENDING if k in needed else JobStatus.SKIPPED).value)
                for k in new])
            s.execute(update(JobRow).where(JobRow.job_key.in_(needed),
                                           JobRow.status == JobStatus.SKIPPED.value)
                      .values(status=JobStatus.PENDING.value, updated_at=now()))
            ids = self._job_ids(s, configs)
            s.execute(delete(CellRow).where(CellRow.study_id == study.study_id))
            s.add_all(CellRow(study_id=study.study_id, section=m.section, cell=m.cell,
                              position=m.position, replicate=m.config.seed, job_id=ids[m.key],
                              published=m.published, skip_reason=m.skip_reason)
                      for m in members)
        return SyncSummary(len(members), len(configs), len(new), len(members) - len(specs))

    @classmethod
    def _adopt_path_keys(cls, s: Session, configs: dict) -> None:
        """Jobs on a directory dataset stored before schema 4 were keyed by its path: give
        each the content-keyed identity of the job now at that path, with its history.
        Those runs normalised with MNIST's mean and std, not the data's own, so their code
        version gains LEGACY_NORM and they show as STALE (kept, never mixed, rerun)."""
        legacy = {c.path_key(): k for k, c in configs.items() if c.data_hash}
        if not legacy:
            return
        found = cls._job_ids(s, legacy)
        taken = cls._job_ids(s, (legacy[old] for old in found))
        for old, job_id in found.items():
            new = legacy[old]
            if new in taken:
                continue
            s.execute(update(JobRow).where(JobRow.job_id == job_id).values(
                job_key=new, data_hash=configs[new].data_hash,
                code_version=func.coalesce(JobRow.code_version, "") + LEGACY_NORM))
            s.execute(update(RunRow).where(RunRow.job_id == job_id).values(
                code_version=func.coalesce(RunRow.code_version, "") + LEGACY_NORM))

    @classmethod
    def _adopt_earlier_keys(cls, s: Session, members: Sequence[JobSpec]) -> None:
        """Jobs stored before settings that others leave unused were normalised out of job
        keys (SGD's momentum inherited by an Adam cell): give each the key and the columns
        of the identical job it is now, with its history. The training was the same, so
        its results stay current."""
        earlier = {m.earlier_key: m for m in members if m.earlier_key}
        if not earlier:
            return
        found = cls._job_ids(s, earlier)
        taken = cls._job_ids(s, (earlier[old].key for old in found))
        for old, job_id in found.items():
            member = earlier[old]
            if member.key in taken:
                continue
            s.execute(update(JobRow).where(JobRow.job_id == job_id).values(
                job_key=member.key, **{name: getattr(member.config, name)
                                       for name, _ in member.unused}))

    @staticmethod
    def _check_factors(s: Session, configs: dict, known: dict[str, int]) -> None:
        """A factor at its default is not in the key: a stored job whose recorded value of
        a factor differs from the value of the job now under its key ran otherwise (the
        factor's default was changed), and taking it would mix two trainings. A stored
        job that has no value of a factor yet (stored before the factor was declared) is
        recorded with the value it is now taken to have had."""
        keys = [k for k in known if len(configs[k].factors)]
        for key, stored_factors in select_in(s, select(JobRow.job_key, JobRow.factors),
                                             JobRow.job_key, keys):
            stored_factors = dict(stored_factors or {})
            now_factors = configs[key].factors
            for name, value in stored_factors.items():
                if name in now_factors and now_factors[name] != value:
                    raise StoreError(
                        f"factor {name!r}: job {key} is stored with {name}={value!r}, and "
                        f"the study now gives that job {name}={now_factors[name]!r} (a "
                        "factor at its default is not part of the key, and its default "
                        f"was {value!r} when the job was stored). Put the default back to "
                        f"{value!r}, or give the factor a new name for its new default")
            if set(now_factors) - set(stored_factors):
                s.execute(update(JobRow).where(JobRow.job_key == key).values(
                    factors={**dict(now_factors.items()), **stored_factors}))

    @staticmethod
    def _job_ids(s: Session, keys) -> dict[str, int]:
        """Job key -> job id of the `keys` the database holds."""
        return dict(select_in(s, select(JobRow.job_key, JobRow.job_id), JobRow.job_key, keys))

    @staticmethod
    def _stored_seeds(s: Session, study_id: int) -> Stored:
        rows = s.execute(select(CellRow.section, CellRow.cell, JobRow.seed, JobRow.job_key)
                         .join(JobRow, JobRow.job_id == CellRow.job_id)
                         .where(CellRow.study_id == study_id))
        out: Stored = {}
        for section, cell, seed, key in rows:
            out.setdefault((section, cell), {})[seed] = key
        return out

    @stored(dict)
    def stored_seeds(self, study: str) -> Stored:
        """(section, cell) -> {seed: job key} of every replicate the study holds."""
        with self.session() as s:
            study_id = s.scalar(select(StudyRow.study_id).where(StudyRow.name == study))
            return {} if study_id is None else self._stored_seeds(s, study_id)

    @retried
    def set_design(self, study: str, design: dict) -> None:
        """Store the decision rule of a sequential run with its study (JSON), so that a
        report analyses the design that was run."""
        with self.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == study))
            if row is None:
                raise StoreError(f"no study {study!r} in {self.url_redacted}")
            row.design = json.dumps(design, sort_keys=True)
