"""Datasets as code: `TrainConfig(dataset="module:function")`, entry-point style like a
"module:function" network.

    def function() -> (x_train, y_train, x_test, y_test)

The function (in a module beside the study file, or installed) returns uint8 images,
N x H x W or N x C x H x W, and integer labels, as numpy arrays or torch tensors: a tuple
of the four, a pair of (images, labels) pairs, or a dict with the keys of an .npz
dataset. It is called once per study load, in the process that loads the study; what it
returns is checked (`formats.check_arrays`) and hashed, and the hash, not the function's
name or any path, is the job's identity: editing what it returns makes new jobs, moving
files changes nothing. Before training, the runner writes the arrays once to the data
cache (`<data root>/functions/<hash>.npz`), which is what the workers load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import data, formats, usernets
from .config import USER_ARCH

_LOADED: dict[str, tuple] = {}  # content hash -> arrays, of the functions this process ran


class DataFunctionError(ValueError):
    """A dataset function that cannot be found or called, or returns no usable dataset."""


def is_function(dataset: str) -> bool:
    return bool(USER_ARCH.match(dataset))


def _where_raised(exc: BaseException, module_file: Path) -> str:
    line = usernets.line_in(module_file, exc)
    return f" ({module_file}, line {line})" if line else ""


def _four(spec: str, out) -> tuple:
    if isinstance(out, dict):
        missing = [k for k in formats.NPZ_KEYS if k not in out]
        if missing:
            raise DataFunctionError(f"dataset {spec!r} returned a dict without "
                                    f"{', '.join(missing)}")
        return tuple(out[k] for k in formats.NPZ_KEYS)
    if isinstance(out, (tuple, list)) and len(out) == 2 and all(
            isinstance(p, (tuple, list)) and len(p) == 2 for p in out):
        (x_train, y_train), (x_test, y_test) = out
        return x_train, y_train, x_test, y_test
    if isinstance(out, (tuple, list)) and len(out) == 4:
        return tuple(out)
    raise DataFunctionError(f"dataset {spec!r} returned {type(out).__name__}; return "
                            "(x_train, y_train, x_test, y_test), ((x_train, y_train), "
                            "(x_test, y_test)) or a dict of those four")


def load(spec: str, dirs: Sequence[str]) -> str:
    """Call the function behind `spec`, check what it returns and keep it in this process;
    its content hash. DataFunctionError saying what is wrong."""
    try:
        function = usernets.load(spec, dirs)
        module_file = usernets.module_file(spec, dirs)
    except usernets.UserNetError as exc:
        raise DataFunctionError(str(exc).replace("arch ", "dataset ", 1)) from None
    try:
        out = function()
    except (SystemExit, KeyboardInterrupt) as exc:  # exit(), sys.exit(0): never a dataset
        code = getattr(exc, "code", None)
        raise DataFunctionError(f"dataset {spec!r}: {function.__name__}() raised "
                                f"{type(exc).__name__}{'' if code is None else f'({code!r})'}"
                                f"{_where_raised(exc, module_file)}: a dataset function "
                                "returns its arrays and never exits") from None
    except Exception as exc:
        raise DataFunctionError(f"dataset {spec!r}: {function.__name__}() raised "
                                f"{type(exc).__name__}: {exc}"
                                f"{_where_raised(exc, module_file)}") from None
    try:
        arrays = formats.check_arrays(*_four(spec, out), where=f"dataset {spec!r}")
        formats.check_labels(arrays[1], arrays[3], f"dataset {spec!r}")
    except formats.FormatError as exc:
        raise DataFunctionError(str(exc)) from None
    digest = formats.array_hash(*arrays)
    _LOADED[digest] = arrays
    return digest


def cache_file(digest: str) -> Path:
    return data.data_root() / "functions" / f"{digest}.npz"


def location(spec: str, digest: str) -> Path:
    """The .npz file the workers load for a dataset function's content `digest`, written
    from the arrays this process got from the function if it is not there yet."""
    path = cache_file(digest)
    if not path.is_file():
        if digest not in _LOADED:
            raise data.DataError(f"dataset {spec!r}: its arrays ({digest}) are not cached in "
                                 f"{path.parent}: load the study again to call the function")
        formats.write_npz(path, _LOADED[digest])
    return path
