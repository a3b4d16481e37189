"""Store stage, assembled: `ResultStore`, the result database behind one URL, made of its
parts (each a file of this folder), and `open_store`, how every command opens one.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import StoreBase
from .dashboard_reads import DashboardReads
from .database import settings, sqlite_path
from .grid import Grid
from .leases import Leases
from .reads import Reads
from .recording import Recording


class ResultStore(Grid, Leases, Recording, Reads, DashboardReads, StoreBase):
    """The result database behind one URL (see `StoreBase` for how it is opened).

    Writes from the threads of one process are serialised by a lock (joblib dispatches
    from a callback thread, a heartbeat thread extends leases)."""


def open_store(db: str | None, *, create: bool = True, required: bool = True,
               read_only: bool = False, retry_seconds: float | None = None,
               notify: Callable[[str], None] | None = None) -> ResultStore:
    """The store behind --db (see `database.settings` for what `db` None means); the
    default SQLite file's directory is made when needed.

    `create` False: a missing SQLite file is a StoreError ("no such database") when
    `required`, else an empty store. `read_only`: a reader's store (never writes, never
    creates; see `StoreBase`). `retry_seconds`: --db-retry; `notify(line)` hears when the
    server is lost and when it is back."""
    chosen = settings(db, retry_seconds)
    if chosen.default and create and not read_only:
        sqlite_path(chosen.url).parent.mkdir(parents=True, exist_ok=True)
    return ResultStore(chosen.url, create=create, required=required, read_only=read_only,
                       retry_seconds=chosen.retry_seconds, notify=notify)
