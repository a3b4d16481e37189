"""Where jobs run: one module per backend, behind one small interface (`base.Backend`).

- `loky` (`local`): worker processes on this machine, one per device slot;
- `dask` (`dask`): a Dask cluster, local or the one at a scheduler's address;
- `slurm` (`slurm`): Dask workers in Slurm jobs, through dask-jobqueue's SLURMCluster.

A backend sets its cluster up for the run (`Backend.started`), gives the pool that the
execute stage submits jobs to (`Backend.pool`: submit, results, live epochs, close), and
owns the run options only it takes (`--scheduler`, `--partition`, ...). `create` is the one
place a backend is chosen by name.
"""

from __future__ import annotations

from .base import Backend, DeviceError, Pool, parse_devices

__all__ = ["NAMES", "Backend", "DeviceError", "Pool", "create", "parse_devices"]

NAMES = ("loky", "dask", "slurm")


def _classes() -> dict[str, type[Backend]]:
    from .dask import DaskBackend
    from .local import LocalBackend
    from .slurm import SlurmBackend

    return {cls.name: cls for cls in (LocalBackend, DaskBackend, SlurmBackend)}


def create(name: str, devices: str = "cpu", jobs: int | None = None, **settings) -> Backend:
    """The backend `name` on `devices` (--devices) with `jobs` (--jobs) and its own
    settings; a setting given (not None, not empty) that another backend owns is a
    DeviceError naming the backend it needs."""
    classes = _classes()
    if name not in classes:
        raise DeviceError(f"unknown backend {name!r}: use one of {', '.join(NAMES)}")
    cls = classes[name]
    for option, value in settings.items():
        if value in (None, (), [], False) or option in cls.settings:
            continue
        owner = next((c.name for c in classes.values() if option in c.settings), None)
        flag = "--" + option.replace("_", "-")
        raise DeviceError(f"{flag} needs --backend {owner}" if owner
                          else f"{flag} is not an option of --backend {name}")
    return cls(devices, jobs, **{k: v for k, v in settings.items() if k in cls.settings})
