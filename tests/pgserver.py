"""A throwaway PostgreSQL server on loopback for the tests (Debian's postgresql package).

Started once per test session in a temporary directory, on a free port, trust
authentication on 127.0.0.1 only, stopped at the end. As root (CI containers), the
server runs as the `postgres` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def require() -> PostgresServer:
    """A new (not yet started) server, or a skip where PostgreSQL or psycopg is missing;
    under CI (the CI environment variable set) their absence fails instead."""
    import pytest

    required = bool(os.environ.get("CI"))
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if required:
            raise
        pytest.skip("psycopg is not installed")
    if bindir() is None and not required:
        pytest.skip("PostgreSQL server binaries not installed")
    return PostgresServer()


def query(url: str, sql: str) -> list:
    """The rows of `sql` on the database at `url`, on a connection of its own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return con.execute(text(sql)).all()
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = bindir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.dir = Path(tempfile.mkdtemp(prefix="cnnbench-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.dir)

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", "cnnbench", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server as an administrator's restart does (`-m fast`: every session is
        terminated, "terminating connection due to administrator command"); the data stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again) on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=100")

    def url(self, database: str) -> str:
        """A fresh, empty database on this server, as an SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "cnnbench",
                  database)
        return f"postgresql+psycopg://cnnbench@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
