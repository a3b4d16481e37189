"""CLI: the only package that wires the stages together, a module per theme.

    cnnbench run STUDY        run.py      study file -> grid in the database -> results
    cnnbench status, list     status.py   where a study stands; runs nothing
    cnnbench report, export,  reports.py  results out: reports, tidy files, comparisons,
             compare, power               the seeds a comparison needs
    cnnbench serve, upgrade,  admin.py    the dashboard, the schema, the datasets
             data

`common` holds what every command shares, `progress` a run on the terminal. A user's
mistake (bad study file, option, dataset or database) is one message on stderr and exit
code 2, with nothing written; a job that fails makes `run` exit 1.
"""

from __future__ import annotations

import atexit

import click

from ..execute import stop_helpers
from . import admin, reports, run, status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnnbench")
def main() -> None:
    """cnnbench: ablation studies of CNNs on MNIST, with a result database."""


for command in (run.run, status.status, status.list_, reports.report, reports.export,
                reports.compare, reports.power, admin.serve, admin.upgrade, admin.data_cmd):
    main.add_command(command)


def entry() -> None:
    """The `cnnbench` command (and `python -m benchmark`): `main`, then, as the process
    ends, the helper processes of its worker pools are stopped and waited for, so that
    nothing of a command outlives it (in-process callers of `main` keep theirs). Registered
    before anything imports joblib, the stop runs after joblib's own exit handlers (they
    run last-registered first), which still need its resource tracker."""
    atexit.register(stop_helpers)
    main()
