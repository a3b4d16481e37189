"""Store stage, riding out trouble: which database errors are worth waiting for, and the
decorator that retries a whole store operation through them (`retried`).

Locked, busy or racing (`transient`): another writer holds the rows; a lost server
(`lost`): a restart, a failover, the network. Both are retried with backoff for the
store's `retry_seconds`, then end in one clear `StoreError`; nothing else is retried.
"""

from __future__ import annotations

import functools
import random
import time

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from .database import StoreError, redact


class DatabaseUnavailable(StoreError):
    """A write waited out a locked, contended or unreachable database for its whole retry
    bound (--db-retry) and gave up: the database is away, not the write wrong."""


class Contended(Exception):
    """Another process is mid-way through the same write (schema creation, a sync)."""


def transient(exc: BaseException) -> bool:
    """Locked, busy or racing: worth retrying. An integrity error (NOT NULL, a foreign key,
    a duplicate) is a bug or bad input, never contention: writes that two runners may race
    on are written as upserts, so they raise none."""
    if isinstance(exc, Contended):
        return True
    if isinstance(exc, IntegrityError):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and any(
        word in text for word in ("locked", "busy", "deadlock", "could not serialize"))


LOST = ("terminating connection", "server closed the connection", "connection refused",
        "could not connect", "connection failed", "connection timed out", "is starting up",
        "is shutting down", "in recovery mode", "connection reset", "connection is closed",
        "no connection to the server", "consuming input failed", "ssl syscall error",
        "read-only transaction")  # a failover's old primary, now a replica


def lost(exc: BaseException) -> bool:
    """The database server went away (a restart, a failover, the network): worth waiting
    for. SQLAlchemy flags a connection it had to drop; the texts are PostgreSQL's (libpq)."""
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    return exc.connection_invalidated or any(word in text for word in LOST)


def retried(method=None, *, outage: bool = True):
    """Retry a store operation, whole, with exponential backoff while the database is
    locked, another runner races it for the same rows, or (`outage`) the server is
    unreachable, for `self.retry_seconds` in all; then a clear StoreError. An outage is
    told to `self._told` when it starts and when it ends.

    Every retried operation is one transaction, so a failed attempt left nothing behind;
    one whose commit may have reached the server before the connection died checks for
    its own rows first (`record`)."""
    if method is None:
        return functools.partial(retried, outage=outage)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        start, delay, down_at = time.monotonic(), 0.05, None
        while True:
            try:
                result = method(self, *args, **kwargs)
                if down_at is not None:
                    self._told("back")
                return result
            except Exception as exc:
                down = outage and lost(exc)
                if not (down or transient(exc)):
                    raise
                cause = getattr(exc, "orig", None) or exc
                if time.monotonic() - start > self.retry_seconds:
                    what = "unreachable" if down else "locked or contended"
                    fix = ("check the server, then run again: the run resumes" if down else
                           "another process holds it; retry when it finishes")
                    raise DatabaseUnavailable(
                        f"{redact(self.url)} stayed {what} for {self.retry_seconds:.0f} s "
                        f"({' '.join(str(cause).split())}): {fix} (nothing was written)") from None
                if down and down_at is None:
                    down_at = time.monotonic()
                    self._told("lost", cause)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
    return wrapper
