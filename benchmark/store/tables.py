"""Store stage, the tables: the SQLAlchemy 2 models of the current schema (the store is
their only user; `migrations` brings older databases to it).

Tables (plural snake_case, `<entity>_id` keys, a unique constraint on each natural key):

- cnnbench_meta   name/value rows; "schema_version" marks a cnnbench database.
- studies         one row per study name: file path and hash of the last sync.
- study_sections  a study's sections in order, with title and interpretation note.
- jobs            one row per distinct resolved config (`job_key` = its content hash);
                  the config as queryable columns; current status and lease.
- study_claims    statements the report checks ("BN beats base").
- study_cells     membership: (study, section, cell, replicate) -> job, published value,
                  skip reason. A job reached from two sections or studies has two rows.
- runs            one row per finished attempt (COMPLETE, FAILED or DIVERGED) with final
                  metrics, error text, code version and provenance. Never deleted.
- epochs          per-epoch metrics of a run.
- metrics         every other number a run records, per epoch: your own metrics and the
                  validation split's (val_loss, val_accuracy, val_<metric>); long, one
                  row per (run, epoch, name), so any of them can be queried and decided on.
- live_epochs     each epoch of a running attempt as the runner receives it (batched, one
                  transaction per poll), so that any reader on any machine sees a running
                  job's curve; a job's rows go once its run is recorded in runs/epochs.

Accuracies are percent; times are seconds; timestamps are UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..config import ARCH_LIMIT, METRIC_NAME_LIMIT
from ..study import NAME_LIMITS

SCHEMA_VERSION = 9  # what each version added: migrations/v2.py ... v9.py


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "cnnbench_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class StudyRow(Base):
    __tablename__ = "studies"

    study_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LIMITS["study"]), unique=True)
    path: Mapped[str] = mapped_column(Text)
    file_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the study file
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]
    margin_pp: Mapped[float | None] = mapped_column(Float)  # smallest effect of interest
    design: Mapped[str | None] = mapped_column(Text)  # JSON: a sequential run's decision rule
    factors: Mapped[dict] = mapped_column(JSON, server_default="{}")  # schema 9: declared
    #                                                       factors, name -> default
    outcome: Mapped[dict | None] = mapped_column(JSON)  # schema 9: what it decides on
    #                                   (outcome.Outcome.to_dict; NULL: test accuracy)


class SectionRow(Base):
    __tablename__ = "study_sections"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    study_section_id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.study_id"))
    name: Mapped[str] = mapped_column(String(NAME_LIMITS["section"]))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[dict | None] = mapped_column(JSON)  # schema 9; NULL: the study's


class ClaimRow(Base):
    __tablename__ = "study_claims"
    __table_args__ = (UniqueConstraint("study_id", "position"),)

    study_claim_id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.study_id"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(String(NAME_LIMITS["section"]))
    kind: Mapped[str] = mapped_column(String(32))  # "beats" | "increasing" | "equivalent"
    cell: Mapped[str | None] = mapped_column(String(NAME_LIMITS["cell"]))
    baseline: Mapped[str | None] = mapped_column(String(NAME_LIMITS["cell"]))
    margin: Mapped[float | None] = mapped_column(Float)  # of an "equivalent" claim, in the
    #                                                      unit of its outcome
    outcome: Mapped[dict | None] = mapped_column(JSON)  # schema 9; NULL: test accuracy


class JobRow(Base):
    __tablename__ = "jobs"

    job_id: Mapped[int] = mapped_column(primary_key=True)
    job_key: Mapped[str] = mapped_column(String(64), unique=True)
    # --- the resolved TrainConfig, one column per field (see config.TrainConfig)
    arch: Mapped[str] = mapped_column(String(ARCH_LIMIT))
    width: Mapped[float] = mapped_column(Float)
    batch_norm: Mapped[bool]
    dropout: Mapped[str] = mapped_column(String(32))
    dropout_p: Mapped[float] = mapped_column(Float)
    activation: Mapped[str] = mapped_column(String(32))
    hidden: Mapped[int]
    optimizer: Mapped[str] = mapped_column(String(32))
    lr: Mapped[float] = mapped_column(Float)
    momentum: Mapped[float] = mapped_column(Float)
    weight_decay: Mapped[float] = mapped_column(Float)
    batch_size: Mapped[int]
    epochs: Mapped[int]
    train_size: Mapped[int | None]
    train_offset: Mapped[int]
    seed: Mapped[int] = mapped_column(Integer)
    precision: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[str] = mapped_column(String(ARCH_LIMIT), server_default="constant")  # 3;
    #                                                   widened to a "module:function" in 9
    warmup_epochs: Mapped[int] = mapped_column(server_default="0")  # schema 3
    augment: Mapped[str] = mapped_column(String(16), server_default="none")  # schema 8
    arch_hash: Mapped[str] = mapped_column(String(64), server_default="")  # schema 3
    dataset: Mapped[str] = mapped_column(Text)  # a name, or the directory last run from
    data_hash: Mapped[str] = mapped_column(String(64), server_default="")  # schema 4
    factors: Mapped[dict] = mapped_column(JSON, server_default="{}")  # schema 9: name ->
    #                                         value of every factor its study declared
    loss: Mapped[str] = mapped_column(String(ARCH_LIMIT), server_default="nll")  # schema 9
    step: Mapped[str] = mapped_column(String(ARCH_LIMIT), server_default="standard")  # 9
    metrics: Mapped[list] = mapped_column(JSON, server_default="[]")  # schema 9
    val_size: Mapped[int] = mapped_column(server_default="0")  # schema 9
    pieces_hash: Mapped[str] = mapped_column(String(64), server_default="")  # schema 9
    # --- state
    status: Mapped[str] = mapped_column(String(16), index=True)  # records.JobStatus
    code_version: Mapped[str | None] = mapped_column(String(32))  # of the latest finished run
    attempts: Mapped[int] = mapped_column(default=0)
    runner: Mapped[str | None] = mapped_column(String(64))  # lease holder while RUNNING
    runner_host: Mapped[str | None] = mapped_column(String(255))
    runner_pid: Mapped[int | None]
    lease_expires: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class CellRow(Base):
    __tablename__ = "study_cells"
    __table_args__ = (UniqueConstraint("study_id", "section", "cell", "replicate"),)

    study_cell_id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.study_id"), index=True)
    section: Mapped[str] = mapped_column(String(NAME_LIMITS["section"]))
    cell: Mapped[str] = mapped_column(String(NAME_LIMITS["cell"]))
    position: Mapped[int]  # cell order within the section
    replicate: Mapped[int]  # the job's seed (older databases: its index in the seeds)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    published: Mapped[float | None] = mapped_column(Float)  # published test accuracy, percent
    skip_reason: Mapped[str | None] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"

    run_id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str | None] = mapped_column(String(32))
    test_accuracy: Mapped[float | None] = mapped_column(Float)  # final epoch, percent
    test_loss: Mapped[float | None] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float)
    epochs_done: Mapped[int] = mapped_column(default=0)
    param_count: Mapped[int | None]
    train_seconds: Mapped[float | None] = mapped_column(Float)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    device: Mapped[str | None] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))  # where it trained: a Slurm node
    slurm_job_id: Mapped[str | None] = mapped_column(String(32))  # the Slurm job it ran in
    runner: Mapped[str | None] = mapped_column(String(64))
    python_version: Mapped[str | None] = mapped_column(String(32))
    torch_version: Mapped[str | None] = mapped_column(String(64))
    cuda_version: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class EpochRow(Base):
    __tablename__ = "epochs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(primary_key=True)  # 1-based
    train_loss: Mapped[float | None] = mapped_column(Float)  # NULL when non-finite
    test_loss: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)  # percent
    seconds: Mapped[float] = mapped_column(Float)  # training time, evaluation excluded


class MetricRow(Base):
    __tablename__ = "metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(primary_key=True)  # 1-based
    name: Mapped[str] = mapped_column(String(METRIC_NAME_LIMIT), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)  # NULL when non-finite


class LiveEpochRow(Base):
    __tablename__ = "live_epochs"
    __table_args__ = (UniqueConstraint("job_id", "attempt", "epoch"),)

    live_epoch_id: Mapped[int] = mapped_column(primary_key=True)  # readers' `after` cursor
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.job_id"), index=True)
    attempt: Mapped[int]  # jobs.attempts when the runner claimed it
    epoch: Mapped[int]  # 1-based
    train_loss: Mapped[float | None] = mapped_column(Float)
    test_loss: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)  # NULL between evaluations
    seconds: Mapped[float] = mapped_column(Float)
    written_at: Mapped[datetime]
