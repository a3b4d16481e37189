"""Study-file stage: load a `studies/*.py` file and return its `Study`.

Takes a path; gives a `LoadedStudy` (the Study, the file's SHA-256, its expanded jobs
with relative dataset paths made absolute). A study file is plain Python that defines
`study()` returning a `Study`; it runs as code, with its own directory importable so
it can share helpers with its neighbours. Every problem becomes a `StudyFileError`
whose message starts with the file's path (and line, where there is one).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import data, pieces, userdata, usernets
from .config import SpecError, is_user_arch, user_pieces
from .plan import expand
from .records import JobSpec
from .study import Study

ENTRY_POINT = "study"


class StudyFileError(ValueError):
    """A study file cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Resolution:
    """What the loader found for a study's own pieces: each dataset as written -> (its
    absolute path or name, its content hash), each "module:function" net -> its module's
    source hash. Applied to an expansion, it gives the jobs' configs their identity."""

    datasets: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    archs: Mapping[str, str] = field(default_factory=dict)
    pieces: Mapping[str, str] = field(default_factory=dict)  # "module:function" of a
    #                                   piece -> its module's source hash

    def apply(self, specs: Sequence[JobSpec]) -> tuple[JobSpec, ...]:
        out = []
        for s in specs:
            config = s.config
            if config.dataset in self.datasets:
                path, digest = self.datasets[config.dataset]
                config = dataclasses.replace(config, dataset=path, data_hash=digest)
            wanted = self.archs.get(config.arch, "")
            if config.arch_hash != wanted:
                config = dataclasses.replace(config, arch_hash=wanted)
            own = pieces.source_hash(config, hashes=self.pieces) if user_pieces(config) else ""
            if config.pieces_hash != own:
                config = dataclasses.replace(config, pieces_hash=own)
            out.append(s if config is s.config else dataclasses.replace(s, config=config))
        return tuple(out)


@dataclass(frozen=True)
class LoadedStudy:
    study: Study
    path: Path
    file_hash: str
    specs: tuple[JobSpec, ...]
    resolution: Resolution = field(default_factory=Resolution)

    def with_seeds(self, seeds: Sequence[int]) -> LoadedStudy:
        """The study run with other replicate seeds, expanded and resolved as the loader
        did the file's (datasets and networks as found then: nothing is called again)."""
        study = self.study.with_seeds(seeds)
        return dataclasses.replace(self, study=study,
                                   specs=self.resolution.apply(expand(study)))

    def running(self, keep: Callable[[JobSpec], bool]) -> LoadedStudy:
        """This study with only the jobs `keep` selects, as the loader resolved them (a
        sequential look runs the seeds its claims still need)."""
        return dataclasses.replace(self, specs=tuple(s for s in self.specs if keep(s)))

    @property
    def import_dirs(self) -> tuple[str, ...]:
        """Where the study's own modules (networks, pieces) are imported from."""
        return (str(self.path.parent),)

    def where(self, text: str) -> str:
        """'PATH, line N' of the first line of the study file that mentions `text`."""
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if text in line:
                return f"{self.path}, line {number}"
        return str(self.path)


def _line_in(path: Path, exc: BaseException) -> str:
    """', line N' of what raised: the line a check made later names (a SpecError's
    `origin`: a cell's factor, checked by the Study), else the deepest traceback frame
    inside the study file, if any."""
    origin = getattr(exc, "origin", None)
    if origin is not None:
        file, line = origin
        same = Path(file).resolve() == path.resolve()
        return f", line {line}" if same else f" ({file}, line {line})"
    line = usernets.line_in(path, exc)
    return f", line {line}" if line else ""


def _execute(path: Path):
    module_name = f"cnnbench_study_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StudyFileError(f"{path}: cannot be loaded as Python (use a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
        entry = getattr(module, ENTRY_POINT, None)
        if not callable(entry):
            raise StudyFileError(
                f"{path}: defines no {ENTRY_POINT}() function; add "
                f"`def {ENTRY_POINT}() -> Study:` returning the study"
            )
        return entry()
    except StudyFileError:
        raise
    except SyntaxError as exc:
        raise StudyFileError(f"{path}, line {exc.lineno}: not valid Python: {exc.msg}") from None
    except SpecError as exc:
        raise StudyFileError(f"{path}{_line_in(path, exc)}: {exc}") from None
    except (SystemExit, KeyboardInterrupt) as exc:  # exit(), sys.exit(0): never a success
        code = getattr(exc, "code", None)
        raise StudyFileError(
            f"{path}{_line_in(path, exc)}: raised {type(exc).__name__}"
            f"{'' if code is None else f'({code!r})'} while building the study: a study "
            f"file returns its Study from {ENTRY_POINT}() and never exits") from None
    except Exception as exc:
        raise StudyFileError(
            f"{path}{_line_in(path, exc)}: raised {type(exc).__name__} while building the "
            f"study: {exc}"
        ) from None
    finally:
        sys.path.remove(str(path.parent))


def _datasets(specs: Sequence[JobSpec], base: Path, path: Path) -> dict[str, tuple[str, str]]:
    """Dataset paths in a study file are relative to the file's directory; a path
    dataset's content hash goes into its configs (the job's identity, see
    `TrainConfig.key`). A path that cannot be read keeps no hash: the run's dataset check
    says what is wrong with it before anything is written. A "module:function" dataset is
    called here, once, and checked (StudyFileError with the study file's line)."""
    resolved: dict[str, tuple[str, str]] = {}  # as written -> (absolute path, content hash)
    for name in sorted({s.config.dataset for s in specs} - set(data.DATASETS)):
        if userdata.is_function(name) and not (base / name).exists():
            try:
                resolved[name] = name, userdata.load(name, [str(base)])
            except userdata.DataFunctionError as exc:
                line = LoadedStudy(None, path, "", ()).where(name)  # type: ignore[arg-type]
                raise StudyFileError(f"{line}: {exc}") from None
            continue
        _check_dataset_name(name, base)
        path_ = name if Path(name).is_absolute() else str((base / name).resolve())
        try:
            resolved[name] = path_, data.content_hash(path_)
        except (data.DataError, OSError):
            resolved[name] = path_, ""
    return resolved


def _check_dataset_name(dataset: str, base: Path) -> None:
    """A bare word that is no directory and no named dataset is a misspelt name."""
    if "/" in dataset or "\\" in dataset or (base / dataset).exists():
        return
    close = difflib.get_close_matches(dataset.lower(), data.DATASETS, n=1, cutoff=0.6)
    if close:
        raise SpecError(f"field 'dataset' got {dataset!r}, neither a named dataset nor a "
                        f"directory: did you mean {close[0]!r}? Named datasets: "
                        f"{', '.join(data.DATASETS)}; or a path (IDX files, CIFAR batches, "
                        "an .npz file) or a \"module:function\"")


def _source_hashes(used: Iterable[tuple[str, str]], path: Path) -> dict[str, str]:
    """The SHA-256 of each (field, "module:function") module's source (the job's
    identity), by "module:function"; a module that cannot be found is a StudyFileError at
    the study file's line that names it."""
    hashes: dict[str, str] = {}
    for what, spec in used:
        if spec in hashes:
            continue
        try:
            hashes[spec] = usernets.source_hash(spec, [str(path.parent)], what)
        except usernets.UserNetError as exc:
            line = LoadedStudy(None, path, "", ()).where(spec)  # type: ignore[arg-type]
            raise StudyFileError(f"{line}: {exc}") from None
    return hashes


def _user_nets(specs: Sequence[JobSpec], path: Path) -> dict[str, str]:
    """The source hash of each "module:function" net's module; built-in nets carry none."""
    return _source_hashes((("arch", s.config.arch) for s in specs
                           if is_user_arch(s.config.arch)), path)


def _user_pieces(specs: Sequence[JobSpec], path: Path) -> dict[str, str]:
    """The source hash of each "module:function" piece's module."""
    return _source_hashes(((name.split("[")[0], spec) for s in specs
                           for name, spec in user_pieces(s.config).items()), path)


def load_study(path: str | Path, seeds: Sequence[int] | None = None) -> LoadedStudy:
    """Run a study file and expand its Study; StudyFileError on any problem.

    `seeds` replaces the study's replicate seeds (as `cnnbench run --seeds` does).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise StudyFileError(f"{path}: study file not found")
    if path.suffix != ".py":
        raise StudyFileError(f"{path}: a study file is Python source ending in .py")
    study = _execute(path)
    if not isinstance(study, Study):
        raise StudyFileError(
            f"{path}: {ENTRY_POINT}() returned {type(study).__name__}, expected a "
            "cnnbench Study (from benchmark import Study)"
        )
    try:
        if seeds is not None:
            study = study.with_seeds(seeds)
        specs = expand(study)
        resolution = Resolution(_datasets(specs, path.parent, path), _user_nets(specs, path),
                                _user_pieces(specs, path))
        specs = resolution.apply(specs)
    except SpecError as exc:
        raise StudyFileError(f"{path}: {exc}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedStudy(study, path, digest, specs, resolution)
