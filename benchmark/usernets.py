"""Your own networks: `TrainConfig(arch="module:function")`, entry-point style.

Takes an arch string and the directories to import from (the study file's folder comes
first, then the installed packages); gives the module's file, the SHA-256 of its source
(part of the job's identity, so editing the net makes its jobs new ones and never mixes
old results with new), and the function itself. The contract:

    def function(config: TrainConfig, input_shape: tuple[int, int, int],
                 num_classes: int) -> torch.nn.Module   # returns logits or log-probabilities

Locating and hashing import nothing (no torch: `status` and `list` stay fast); `load`
imports the module, in the runner to check the net before anything is written, and in
each worker to build it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path


def line_in(path: Path, exc: BaseException) -> int | None:
    """The line of the deepest traceback frame of `exc` inside the file `path`, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == Path(path).resolve()]
    return frames[-1].lineno if frames else None


class UserNetError(ValueError):
    """A "module:function" network that cannot be found, loaded or used."""


@contextlib.contextmanager
def importable(dirs: Sequence[str]) -> Iterator[None]:
    """`dirs` first on sys.path for the block (the study's folder, as for its imports)."""
    added = [d for d in dirs if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(d)


def _spec(arch: str, dirs: Sequence[str], what: str = "arch"):
    """The module's spec: a top-level module in `dirs` first (looked up on disk, never from
    sys.modules, where a same-named module of another folder may sit), else installed."""
    module_name = arch.split(":")[0]
    try:
        if "." not in module_name:
            spec = importlib.machinery.PathFinder.find_spec(module_name, list(dirs))
            if spec is not None:
                return spec, True
        with importable(dirs):
            return importlib.util.find_spec(module_name), False
    except (ImportError, ValueError) as exc:
        raise UserNetError(f"{what} {arch!r}: cannot look up module {module_name!r}: {exc}")\
            from None


def module_file(arch: str, dirs: Sequence[str] = (), what: str = "arch") -> Path:
    module_name = arch.split(":")[0]
    spec, _ = _spec(arch, dirs, what)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        where = ", ".join(dirs) or "sys.path"
        raise UserNetError(f"{what} {arch!r}: no module {module_name!r} (looked in {where} and "
                           f"the installed packages); put {module_name}.py next to the study "
                           "file, or install it")
    return Path(spec.origin)


def source_hash(arch: str, dirs: Sequence[str] = (), what: str = "arch") -> str:
    return hashlib.sha256(module_file(arch, dirs, what).read_bytes()).hexdigest()


def load(arch: str, dirs: Sequence[str] = (), expected_hash: str | None = None,
         what: str = "arch"):
    """The function behind `arch` (a "module:function" of the field `what`), imported.
    With `expected_hash`, refuse a module whose source changed since its jobs were
    defined (their identity would be wrong)."""
    if expected_hash and source_hash(arch, dirs, what) != expected_hash:
        raise UserNetError(f"{what} {arch!r}: {module_file(arch, dirs, what)} changed since "
                           "the study was loaded; run the study again to train the new "
                           "version")
    module_name, function_name = arch.split(":")
    spec, local = _spec(arch, dirs, what)
    with importable(dirs):
        try:
            if local:  # the file as it is now, not an earlier import of another folder's
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(module_name)
        except Exception as exc:
            raise UserNetError(f"{what} {arch!r}: importing {module_name!r} raised "
                               f"{type(exc).__name__}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        names = sorted(n for n in vars(module) if callable(getattr(module, n))
                       and not n.startswith("_"))
        raise UserNetError(f"{what} {arch!r}: module {module_name!r} ({module.__file__}) has no "
                           f"function {function_name!r}; it has: {', '.join(names) or 'none'}")
    return function
