"""Dataset formats beside MNIST's IDX files: CIFAR's pickled batches, `.npz` archives and
the arrays a dataset function returns; their checks and their content hash.

Every format gives the same `Arrays` (uint8 images, N x H x W for one channel as IDX
gives them or N x C x H x W, int64 labels). The content hash of arrays (`array_hash`) is
taken over the images as N x C x H x W and the labels as int64, so the same data is the
same job whether it comes as CIFAR batches, an `.npz` file or a function. No torch here.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np

# CIFAR's batch files, as the archives unpack them (folder cifar-10-batches-py/ or
# cifar-100-python/): name -> split.
CIFAR10_FILES = {"data_batch_1": "train", "data_batch_2": "train", "data_batch_3": "train",
                 "data_batch_4": "train", "data_batch_5": "train", "test_batch": "test"}
CIFAR100_FILES = {"train": "train", "test": "test"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class FormatError(ValueError):
    """Arrays or files that are no usable dataset; the message says what is wrong."""


def check_arrays(x_train, y_train, x_test, y_test, where: str):
    """The four arrays as numpy (tensors are taken too), checked: uint8 images of one
    shape, N x H x W or N x C x H x W, with as many integer labels, none negative.
    FormatError naming `where` and the fix otherwise."""
    out = []
    for name, a in zip(NPZ_KEYS, (x_train, y_train, x_test, y_test), strict=True):
        if hasattr(a, "detach"):  # a torch tensor
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise FormatError(f"{where}: {name} is a {type(a).__name__}, not an array: return "
                              "numpy arrays or torch tensors")
        out.append(a)
    x_train, y_train, x_test, y_test = out
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype != np.uint8:
            raise FormatError(f"{where}: {name} has dtype {x.dtype}, expected uint8 pixels "
                              "(0-255): convert with (x * 255).round().astype('uint8')")
        if x.ndim not in (3, 4) or min(x.shape) < 1:
            raise FormatError(f"{where}: {name} has shape {x.shape}, expected (N, height, "
                              "width) or (N, channels, height, width)")
        if x.ndim == 4 and x.shape[1] > 4 and x.shape[3] <= 4:  # (N, H, W, C), surely
            raise FormatError(f"{where}: {name} has shape {x.shape}, which looks channels-last "
                              "(N, H, W, C): give (N, C, H, W), e.g. x.transpose(0, 3, 1, 2)")
    for name, y, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise FormatError(f"{where}: {name} has shape {y.shape} and dtype {y.dtype}, "
                              "expected one integer class label per image")
        if len(y) != len(x):
            raise FormatError(f"{where}: {len(x)} images but {len(y)} labels in "
                              f"{name.replace('y_', '')}")
        if len(y) and y.min() < 0:
            raise FormatError(f"{where}: {name} holds label {int(y.min())}: labels are class "
                              "indices 0, 1, 2, ...")
    if _image_shape(x_train) != _image_shape(x_test):
        raise FormatError(f"{where}: train images are {_image_shape(x_train)} but test images "
                          f"{_image_shape(x_test)}: both splits need one shape")
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def check_labels(y_train, y_test, where: str) -> int:
    """The number of classes C of a dataset's labels, which must be 0 .. C-1 with every
    class in the training split and the test split's within them (a class count comes from
    the labels, so one stray label would make a net of a billion outputs). FormatError
    naming the offending label and where it is otherwise."""
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if not np.issubdtype(np.asarray(y).dtype, np.integer):
            raise FormatError(f"{where}: {name} has dtype {np.asarray(y).dtype}: labels are "
                              "integer class indices 0, 1, 2, ...")
        if len(y) and np.min(y) < 0:
            raise FormatError(f"{where}: {name} holds label {int(np.min(y))}: labels are "
                              "class indices 0, 1, 2, ...")
    present = np.unique(y_train)
    if not len(present):
        return 0
    classes = int(present[-1]) + 1
    if len(present) != classes:
        gap = int(np.flatnonzero(present != np.arange(len(present)))[0])
        raise FormatError(
            f"{where}: y_train holds label {classes - 1} but only {len(present)} distinct "
            f"labels, none of them {gap}: labels are class indices 0 .. C-1 with every class "
            "in the training split; renumber them, e.g. np.unique(y, return_inverse=True)[1]")
    extra = np.setdiff1d(np.unique(y_test), present)
    if len(extra):
        raise FormatError(f"{where}: y_test holds label {int(extra[0])}, which no training "
                          f"image has (training labels are 0 .. {classes - 1}): a test class "
                          "must be one the net can learn")
    return classes


def _image_shape(x: np.ndarray) -> tuple[int, ...]:
    return (1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:])


def array_hash(x_train, y_train, x_test, y_test) -> str:
    """Content hash of checked arrays: images as N x C x H x W uint8, labels as int64."""
    digest = hashlib.sha256()
    for a in (x_train, y_train, x_test, y_test):
        a = np.ascontiguousarray(a if a.ndim != 3 else a[:, None])
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- CIFAR


def cifar_folder(directory: Path) -> tuple[Path, dict[str, str]] | None:
    """(folder, batch files) of CIFAR-10 or CIFAR-100 batches in `directory` or in the
    folder its archive unpacks to; None when there are none."""
    for folder in (directory, directory / "cifar-10-batches-py", directory / "cifar-100-python"):
        for files in (CIFAR10_FILES, CIFAR100_FILES):
            if all((folder / name).is_file() for name in files):
                return folder, files
    return None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")  # noqa: S301 (the dataset's own format)
    except Exception as exc:
        raise FormatError(f"{path} is no CIFAR batch ({type(exc).__name__}: {exc}): replace "
                          "it with an intact copy") from None
    if not isinstance(batch, dict):
        raise FormatError(f"{path} is no CIFAR batch (a {type(batch).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def read_cifar(directory: Path):
    """The four arrays of CIFAR batches: images N x 3 x 32 x 32 (the batches' rows are the
    red, green and blue planes), labels (`labels`, or CIFAR-100's `fine_labels`)."""
    found = cifar_folder(directory)
    if found is None:
        raise FormatError(f"{directory} holds no CIFAR batches (data_batch_1-5 and "
                          "test_batch, or CIFAR-100's train and test)")
    folder, files = found
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for name, split in files.items():
        batch = _unpickle(folder / name)
        labels = batch.get("labels", batch.get("fine_labels"))
        if "data" not in batch or labels is None:
            raise FormatError(f"{folder / name} is no CIFAR batch: it lacks 'data' or "
                              "'labels'/'fine_labels'")
        pixels = np.asarray(batch["data"], dtype=np.uint8)
        if pixels.ndim != 2 or pixels.shape[1] != 3072:
            raise FormatError(f"{folder / name}: data has shape {pixels.shape}, expected "
                              "(N, 3072): 32 x 32 pixels in 3 colour planes")
        parts[split][0].append(pixels.reshape(-1, 3, 32, 32))
        parts[split][1].append(np.asarray(labels, dtype=np.int64))
    arrays = [np.concatenate(parts[s][i]) for s in ("train", "test") for i in (0, 1)]
    return check_arrays(*arrays, where=str(folder))


# --------------------------------------------------------------------------- .npz


def npz_file(location: Path) -> Path | None:
    """The .npz file `location` is, or the only one a directory holds; None otherwise."""
    if location.is_file() and location.suffix == ".npz":
        return location
    if location.is_dir():
        found = sorted(location.glob("*.npz"))
        return found[0] if len(found) == 1 else None
    return None


def read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise FormatError(f"{path} lacks array(s) {', '.join(missing)}: an .npz "
                                  f"dataset holds {', '.join(NPZ_KEYS)}")
            arrays = [archive[k] for k in NPZ_KEYS]
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(f"{path} is no readable .npz archive ({type(exc).__name__}: "
                          f"{exc})") from None
    return check_arrays(*arrays, where=str(path))


def write_npz(path: Path, arrays) -> None:
    """Save checked arrays as an .npz dataset, atomically (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part.npz")
    np.savez(part, **dict(zip(NPZ_KEYS, arrays, strict=True)))
    os.replace(part, path)
