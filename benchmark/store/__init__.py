"""Store stage: the result database, and the only code that talks SQL.

Takes expanded studies, claims and `JobResult`s; gives plain frozen records (`JobState`,
`SyncSummary`, `CellRun`) and pandas frames, never ORM rows. Any SQLAlchemy URL works; the
default is an SQLite file in WAL mode. Job life cycle: `sync_study` writes the grid
(PENDING, or SKIPPED where every membership excludes it); `claim` takes one job under a
lease, atomically; `record` stores a finished attempt; `release` and `reclaim` return a
stopped or dead runner's jobs to PENDING. Its rooms: database (URL, settings, engines),
retry, tables, migrations/ (one file per schema version), base (open, sessions), grid,
leases, recording, reads, dashboard_reads, queries (shared SQL), result_store (assembled).
"""

from ..state import JobState
from .database import DEFAULT_DB, StoreError, database_url, now, redact
from .grid import LEGACY_NORM, SyncSummary
from .leases import HEARTBEAT_SECONDS, Runner
from .result_store import ResultStore, open_store
from .retry import DatabaseUnavailable

__all__ = ["DEFAULT_DB", "DatabaseUnavailable", "HEARTBEAT_SECONDS", "LEGACY_NORM", "JobState",
           "ResultStore", "Runner", "StoreError", "SyncSummary", "database_url", "now",
           "open_store", "redact"]
