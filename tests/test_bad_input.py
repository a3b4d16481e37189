"""The bad-input catalogue: every mistake a user can make at the door of `cnnbench run`
(and the other commands) gets one clear message naming the problem and the fix, exit
code 2, no traceback, and leaves the result database exactly as it was.

Each case runs against a database that already holds the results of a finished study.
"""

import os
import shutil
import sqlite3
import textwrap

import numpy as np
import pytest
from conftest import make_idx_dir, write_idx

from benchmark.store.tables import SCHEMA_VERSION

STUDY = textwrap.dedent('''
    from benchmark import Cell, Claim, Section, Study, TrainConfig, vary

    def study():
        base = TrainConfig(arch="sk", width=0.2, epochs=1, batch_size=32, train_size=64,
                           dataset="idx")
        {body}
''')


def _study(body: str) -> str:
    return STUDY.format(body=textwrap.indent(textwrap.dedent(body), "    ").strip())


def _one_cell(cell: str) -> str:
    """A study of one cell 'x' with the overrides `cell` (Python source), at line 7."""
    return _study(f'return Study(name="t", baseline=base, sections=[Section("A", '
                  f'[Cell("x", {cell})])])')


ONE_CELL = ('return Study(name="t", baseline=base, '
            'sections=[Section("A", [Cell("x", dataset="{dataset}")])])')


def _data_function(returns: str) -> dict[str, str]:
    """A study whose dataset is baddata:make, returning `returns` (numpy as np)."""
    module = ("import numpy as np\n\n\ndef make():\n"
              "    x = np.zeros((8, 12, 12), np.uint8)\n    y = np.zeros(8, np.int64)\n"
              f"    return {returns}\n")
    return {"baddata.py": module,
            "case.py": _study(ONE_CELL.format(dataset="baddata:make"))}


# name -> (files to write {path: text}, extra CLI args (None: `run case.py`), message)
CASES = {
    "dataset function of floats": (_data_function("x / 255.0, y, x, y"), None,
                                   "case.py, line 7: dataset 'baddata:make': x_train has "
                                   "dtype float64, expected uint8 pixels"),
    "dataset function channels-last": (_data_function("np.zeros((8, 12, 12, 3), np.uint8), y, "
                                                      "np.zeros((8, 12, 12, 3), np.uint8), y"),
                                       None, "which looks channels-last (N, H, W, C)"),
    "dataset function negative label": (_data_function("x, y - 1, x, y"), None,
                                        "case.py, line 7: dataset 'baddata:make': y_train "
                                        "holds label -1"),
    "dataset function short labels": (_data_function("x, y[:5], x, y"), None,
                                      "8 images but 5 labels in train"),
    "dataset function raising": (_data_function("x, y, x, y[99]"), None,
                                 "dataset 'baddata:make': make() raised IndexError: index 99 "
                                 "is out of bounds"),
    "dataset function missing": ({"baddata.py": "def other():\n    pass\n",
                                  "case.py": _study(ONE_CELL.format(dataset="baddata:make"))},
                                 None, "dataset 'baddata:make': module 'baddata'"),
    "missing study file": ({}, ["run", "nowhere.py"], "nowhere.py: study file not found"),
    "field typo": ("typo.py", None, "line 5: unknown field 'arhc' in TrainConfig; did you mean "
                                    "'arch'?"),
    "cell field typo": ("typo_cell.py", None, "unknown field 'batchnorm' in cell 'x'; did you "
                                              "mean 'batch_norm'?"),
    "wrong type": ("wrong_type.py", None, "field 'epochs' must be int, got str '20'"),
    "unknown optimizer": ("bad_choice.py", None, "got 'adma' (did you mean 'adam'?); valid "
                                                 "choices: sgd, adam"),
    "empty axis": ("empty_axis.py", None, "axis 'width' is empty"),
    "study raises": ("raises.py", None, "line 6: raised KeyError while building the study"),
    "no study()": ("no_entry.py", None, "defines no study() function"),
    "study() returns None": ("returns_none.py", None, "study() returned NoneType, expected a "
                                                      "cnnbench Study"),
    "not Python": ("not_python.py", None, "line 2: not valid Python"),
    "missing dataset": ("missing_dataset.py", None, "no/such/dir' does not exist"),
    "slice beyond the dataset": ("big_slice.py", None, "training slice starts at 300 with "
                                                       "train_size 100, beyond the 320"),
    "negative training size": (_study('''
        return Study(name="neg", baseline=base, sections=[Section("A", vary("train_size", [-5]))])
    '''), None, "field 'train_size' must be"),
    "negative learning rate": (_study('''
        return Study(name="neg", baseline=base, sections=[Section("A", [Cell("x", lr=-0.1)])])
    '''), None, "field 'lr' must be"),
    "duplicate section names": (_study('''
        return Study(name="dup", baseline=base,
                     sections=[Section("A", [Cell("x")]), Section("A", [Cell("y")])])
    '''), None, "duplicate section names: ['A']"),
    "empty grid": (_study('''
        return Study(name="empty", baseline=base, sections=[])
    '''), None, "has no sections"),
    "claim on a missing cell": (_study('''
        return Study(name="claim", baseline=base, sections=[Section("A", [Cell("BN")])],
                     claims=[Claim.beats("x", "A", "bn", "BN")])
    '''), None, "no cell 'bn' (did you mean 'BN'?)"),
    "width with no channels": (_study('''
        return Study(name="w", baseline=base, sections=[Section("A", vary("width", [0.01]))])
    '''), None, "leaves a conv layer with no channels"),
    "non-MNIST IDX dataset": ({f"foreign/{name}": "not an idx file at all" for name in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")}, ["data", "--check", "foreign"], "not an IDX file"),
    "dataset of the wrong shape": ("<wrong shape>", ["run", "case.py"],
                                   "train images are (14, 56) pixels but test images (28, 28): "
                                   "both splits need one size"),
    "images too small for the net": ("<small images>", ["run", "case.py"],
                                     "cell 'x': 11x11 images are too small for the 'sk' net (it "
                                     "needs at least 12x12)"),
    "misspelt dataset name": (_study(ONE_CELL.format(dataset="fashion_mnist")), None,
                              "got 'fashion_mnist', neither a named dataset nor a directory: "
                              "did you mean 'fashion-mnist'?"),
    "truncated dataset in a study": ("<truncated>", ["run", "case.py"],
                                     "is truncated or corrupt"),
    "truncated IDX dataset": ("<truncated>", ["data", "--check", "short"],
                              "truncated or corrupt"),
    "a .gz dataset file that is not gzip": ("<not gzip>", ["run", "case.py"],
                                            "train-images-idx3-ubyte.gz is truncated or not "
                                            "valid gzip (BadGzipFile"),
    "a .gz dataset file with a damaged stream": ("<damaged gzip>", ["run", "case.py"],
                                                 "t10k-images-idx3-ubyte.gz is truncated or not "
                                                 "valid gzip (error: Error -3 while "
                                                 "decompressing"),
    "MNIST checksum mismatch": ("<corrupt cache>", ["data"], "fails its SHA-256 check"),
    "newer database schema": ("<newer db>", ["run", "tiny.py"], "newer than this cnnbench"),
    "foreign database": ("<foreign db>", ["run", "tiny.py", "--db", "foreign.sqlite"],
                         "not a cnnbench database"),
    "not a database": ({"junk.sqlite": "just text, no database"},
                       ["run", "tiny.py", "--db", "junk.sqlite"], "not a usable database"),
    "database directory missing": ({}, ["run", "tiny.py", "--db", "no/such/r.sqlite"],
                                   "directory no/such does not exist"),
    "read-only database path": ({}, ["run", "tiny.py", "--db", "/proc/cnnbench.sqlite"],
                                "Check that /proc is writable and has free space"),
    "unknown database driver": ({}, ["run", "tiny.py", "--db", "postgresql+nodriver://x/y"],
                                "bad database URL"),
    "unknown option": ({}, ["run", "tiny.py", "--job", "2"],
                       "No such option '--job'. (Did you mean one of: '--db', '--jobs'?)"),
    "bad --devices": ({}, ["run", "tiny.py", "--devices", "tpu"], "bad device 'tpu'"),
    "--jobs 0": ({}, ["run", "tiny.py", "--jobs", "0"], "0 is not in the range x>=1"),
    "bad --seeds": ({}, ["run", "tiny.py", "--seeds", "0,x"], "give comma-separated integers"),
    "--fuse 0": ({}, ["run", "tiny.py", "--fuse", "0"], "0 is not in the range x>=1"),
    "--scheduler without dask": ({}, ["run", "tiny.py", "--scheduler", "tcp://127.0.0.1:9"],
                                 "--scheduler needs --backend dask"),
    "--partition without slurm": ({}, ["run", "tiny.py", "--partition", "gpu"],
                                  "--partition needs --backend slurm"),
    "--sbatch without slurm": ({}, ["run", "tiny.py", "--backend", "dask", "--sbatch", "-q x"],
                               "--sbatch needs --backend slurm"),
    "bad --walltime": ({}, ["run", "tiny.py", "--backend", "slurm", "--walltime", "2h"],
                       "bad wall time '2h': use Slurm's format, e.g. 90 (minutes), 01:30:00"),
    "not a dask-jobqueue file": ({"site.yaml": "slurm:\n  queue: gpu\n"},
                                 ["run", "tiny.py", "--backend", "slurm", "--cluster-config",
                                  "site.yaml"],
                                 "site.yaml is no dask-jobqueue configuration: it needs a "
                                 "top-level `jobqueue:` mapping"),
    "a GPU index on slurm": ({}, ["run", "tiny.py", "--backend", "slurm", "--devices",
                                 "cuda:1"],
                             "its GPUs are numbered from 0 inside it, so ask for GPUs with "
                             "--gpus-per-job"),
    "report of an unknown study": ({}, ["report", "nosuch.py"], "nosuch.py: study file not "
                                                                "found"),
    "NaN learning rate": (_study('''
        return Study(name="nan", baseline=base,
                     sections=[Section("A", [Cell("x", lr=float("nan"))])])
    '''), None, "line 8: cell 'x': field 'lr' must be a finite number, got nan"),
    "infinite weight decay": (_study('''
        return Study(name="inf", baseline=base,
                     sections=[Section("A", vary("weight_decay", [1e-4, float("inf")]))])
    '''), None, "field 'weight_decay' must be a finite number, got inf"),
    "NaN published value": (_study('''
        return Study(name="pub", baseline=base,
                     sections=[Section("A", [Cell("x", published=float("nan"))])])
    '''), None, "published must be a finite number (percent), got nan"),
    "study calls sys.exit(0)": (_study('''
        import sys
        sys.exit(0)
    '''), None, "line 8: raised SystemExit(0) while building the study"),
    "study calls exit()": (_study('''
        exit()
    '''), None, "raised SystemExit while building the study"),
    "study raises KeyboardInterrupt": (_study('''
        raise KeyboardInterrupt
    '''), None, "raised KeyboardInterrupt while building the study"),
    "unknown schedule": (_study('''
        return Study(name="sch", baseline=base,
                     sections=[Section("A", [Cell("x", schedule="cosin")])])
    '''), None, "got 'cosin' (did you mean 'cosine'?); valid choices: constant, step, cosine"),
    "warm-up longer than the run": (_study('''
        return Study(name="warm", baseline=base,
                     sections=[Section("A", [Cell("x", warmup_epochs=3)])])
    '''), None, "field 'warmup_epochs' = 3 exceeds epochs = 1"),
    "SGD momentum written beside Adam": (_study('''
        return Study(name="m", baseline=base,
                     sections=[Section("A", [Cell("x", optimizer="adam", momentum=0.9)])])
    '''), None, "line 8: cell 'x': field 'momentum' = 0.9 has no effect with optimizer 'adam' "
                   "(momentum applies to optimizer 'sgd' only)"),
    "dropout_p of a cell without dropout": (_study('''
        return Study(name="p", baseline=base,
                     sections=[Section("A", [Cell("x", dropout_p=0.2)])])
    '''), None, "section 'A', cell 'x': field 'dropout_p' = 0.2 has no effect with dropout "
                   "'none'"),
    "a margin of zero": (_study('''
        return Study(name="m", baseline=base, sections=[Section("A", [Cell("x")])],
                     margin_pp=0)
    '''), None, "line 7: study 'm': margin_pp must be a positive number of percentage "
                   "points below 100 (the smallest difference in accuracy that matters), got 0"),
    "an infinite study margin": (_study('''
        return Study(name="m", baseline=base, sections=[Section("A", [Cell("x")])],
                     margin_pp=float("inf"))
    '''), None, "study 'm': margin_pp must be a positive number of percentage points below 100"),
    "a NaN equivalence margin": (_study('''
        claim = Claim.equivalent("same", "A", "y", "x", float("nan"))
        return Study(name="m", baseline=base,
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[claim])
    '''), None, "line 7: claim 'same': margin_pp must be a positive number of percentage"),
    "an equivalence claim on a missing cell": (_study('''
        return Study(name="m", baseline=base,
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.equivalent("same", "A", "Y", "x", 0.3)])
    '''), None, "section 'A' has no cell 'Y' (did you mean 'y'?)"),
    "--until-decided on a study without claims": ({}, ["run", "tiny.py", "--until-decided"],
                                                  "study 'tiny' has no claims comparing two "
                                                  "cells"),
    "--until-decided with --seeds": ({}, ["run", "tiny.py", "--until-decided", "--seeds",
                                          "0-4"], "--until-decided adds seeds itself"),
    "--until-decided refused before a new database is made": (
        {}, ["run", "tiny.py", "--until-decided", "--db", "fresh.sqlite"],
        "study 'tiny' has no claims comparing two cells"),
    "--until-decided on a one-seed study": (_study('''
        return Study(name="q", baseline=base, seeds=[0],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.beats("y beats x", "A", "y", "x")])
    '''), ["run", "case.py", "--until-decided"], "study 'q' starts with 1 seed: a paired "
                                                  "test needs 2 or more"),
    "a sequential claim over a cell with its own seed": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", seed=5)])],
                     claims=[Claim.beats("y beats x", "A", "y", "x")])
    '''), ["run", "case.py", "--until-decided"], "compares cell 'y' of section 'A', which "
                                                  "sets its own seed"),
    "a claim comparing a cell with itself": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.beats("y beats y", "A", "y", "y")])
    '''), None, "claim 'y beats y' compares cell 'y' with itself"),
    "two claims with the same text": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.beats("y wins", "A", "y", "x"),
                             Claim.beats("y wins", "A", "x", "y")])
    '''), None, "has claims with the same text: ['y wins']"),
    "a claim text that is not a string": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.beats(42, "A", "y", "x")])
    '''), None, "a claim's text must be a non-empty string, got 42"),
    "a margin of 1e300 pp": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.equivalent("same", "A", "y", "x", 1e300)])
    '''), None, "margin_pp must be a positive number of percentage points below 100"),
    "--batch 0": ({}, ["run", "tiny.py", "--until-decided", "--batch", "0"],
                  "0 is not in the range x>=1"),
    "--max-seeds 1000000 (it used to hang before the first look)": (
        {}, ["run", "tiny.py", "--until-decided", "--max-seeds", "1000000"],
        "1000000 is not in the range 2<=x<=200"),
    "--max-seeds below the study's seeds": (_study('''
        return Study(name="q", baseline=base, seeds=[0, 1, 2],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)])],
                     claims=[Claim.beats("y beats x", "A", "y", "x")])
    '''), ["run", "case.py", "--until-decided", "--max-seeds", "2"],
        "--max-seeds 2 is below the 3 seeds the study runs first"),
    "a sequential claim over a skipped cell": (_study('''
        from benchmark import Exclude
        return Study(name="q", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)],
                                       exclude=[Exclude({"batch_norm": True}, "no budget")])],
                     claims=[Claim.beats("y beats x", "A", "y", "x")])
    '''), ["run", "case.py", "--until-decided"],
        "claim 'y beats x' compares cell 'y' of section 'A', which the study excludes"),
    "user network: no such module": (_study('''
        return Study(name="u", baseline=base,
                     sections=[Section("A", [Cell("x", arch="nosuchmod:net")])])
    '''), None, "line 8: arch 'nosuchmod:net': no module 'nosuchmod'"),
    "user network: no such function": (_study('''
        return Study(name="u", baseline=base,
                     sections=[Section("A", [Cell("x", arch="mynets:smal_cnn")])])
    '''), None, "has no function 'smal_cnn'; it has: breaks_in_forward, not_a_module, "
                   "small_cnn, wrong_classes"),
    "user network: not a module": (_study('''
        return Study(name="u", baseline=base,
                     sections=[Section("A", [Cell("x", arch="mynets:not_a_module")])])
    '''), None, "line 8: arch 'mynets:not_a_module' returned str, not a torch.nn.Module"),
    "user network: wrong output shape": (_study('''
        return Study(name="u", baseline=base,
                     sections=[Section("A", [Cell("x", arch="mynets:wrong_classes")])])
    '''), None, "output of shape (2, 11) for a batch of (2, 1, 28, 28); expected (2, 10)"),
    "user network: raises on a batch": (_study('''
        return Study(name="u", baseline=base,
                     sections=[Section("A", [Cell("x", arch="mynets:breaks_in_forward")])])
    '''), None, "a batch of shape (2, 1, 28, 28) raised RuntimeError"),
    "user network: bad arch string": (_study('''
        return Study(name="u", baseline=base, sections=[Section("A", [Cell("x", arch="skk")])])
    '''), None, "field 'arch' got 'skk' (did you mean 'sk'?); valid: base, sk, or your own "
                   "network as 'module:function'"),
    "status of a missing database": ({}, ["status", "tiny.py", "--db", "typo.sqlite"],
                                     "no such database: typo.sqlite"),
    "list of a missing database": ({}, ["list", "tiny.py", "--db", "typo.sqlite"],
                                   "no such database: typo.sqlite"),
    "power --effect nan (it planned 'nan pp')": ({}, ["power", "tiny.py", "--effect", "nan"],
                                                  "nan is not a number of percentage points"),
    "power --effect inf": ({}, ["power", "tiny.py", "--effect", "inf"],
                           "inf is not in the range 0<x<=100"),
    "report of seeds the study lacks": ({}, ["report", "tiny.py", "--seeds", "7,8"],
                                        "study 'tiny' has no cell runs with seed(s) 7, 8: its "
                                        "seeds are 0, 1"),
    "report of a missing database": ({}, ["report", "--db", "typo.sqlite"],
                                     "no such database: typo.sqlite"),
    "export of a missing database": ({}, ["export", "--db", "typo.sqlite"],
                                     "no such database: typo.sqlite"),
    "status of a foreign database": ("<foreign db>", ["status", "tiny.py", "--db",
                                                      "foreign.sqlite"],
                                     "not a cnnbench database"),
    "foreign database in WAL mode": ("<foreign wal db>", ["run", "tiny.py", "--db",
                                                          "foreign.sqlite"],
                                     "not a cnnbench database"),
    "unreachable Dask scheduler": ({}, ["run", "tiny.py", "--backend", "dask",
                                        "--scheduler", "tcp://127.0.0.1:9"],
                                   "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    "a sequential claim over a section with its own seeds (it could never be decided)": (
        _study('''
        return Study(name="q", baseline=base, seeds=[0, 1, 2],
                     sections=[Section("A", [Cell("x"), Cell("y", batch_norm=True)],
                                       seeds=[0, 1])],
                     claims=[Claim.beats("y beats x", "A", "y", "x")])
    '''), ["run", "case.py", "--until-decided"],
        "claim 'y beats x' is on section 'A', which runs its own seeds [0, 1]"),
    "--dry-run --until-decided on a study without claims": (
        {}, ["run", "tiny.py", "--until-decided", "--dry-run"],
        "study 'tiny' has no claims comparing two cells"),
    "--dry-run --until-decided with --seeds": (
        {}, ["run", "tiny.py", "--until-decided", "--seeds", "0-4", "--dry-run"],
        "--until-decided adds seeds itself"),
    "dataset function calling sys.exit(0) (it ran nothing, exit 0)": (
        {"baddata.py": "import sys\n\n\ndef make():\n    sys.exit(0)\n",
         "case.py": _study(ONE_CELL.format(dataset="baddata:make"))}, None,
        "dataset 'baddata:make': make() raised SystemExit(0)"),
    "dataset function raising KeyboardInterrupt (it said only 'Aborted!')": (
        {"baddata.py": "def make():\n    raise KeyboardInterrupt\n",
         "case.py": _study(ONE_CELL.format(dataset="baddata:make"))}, None,
        "make() raised KeyboardInterrupt"),
    "a label of 10**9 in a 4-class dataset (it tried to allocate 2 TB)": (
        _data_function("x, np.array([0, 1, 2, 3, 0, 1, 2, 10**9]), x, y"), None,
        "y_train holds label 1000000000 but only 5 distinct labels, none of them 4"),
    "a train label of 200 in a 4-class dataset (it trained 201 classes)": (
        _data_function("x, np.array([0, 1, 2, 3, 0, 1, 2, 200]), x, y"), None,
        "y_train holds label 200 but only 5 distinct labels, none of them 4"),
    "a test label no training image has": (
        _data_function("x, np.array([0, 1, 2, 0, 1, 2, 0, 1]), x, np.arange(8) % 4"), None,
        "y_test holds label 3, which no training image has (training labels are 0 .. 2)"),
    "a stray label in an IDX dataset": ("<stray label>", ["run", "case.py"],
                                        "y_train holds label 200 but only 11 distinct labels"),
    "two .npz archives in a dataset folder (it blamed missing IDX files)": (
        "<two npz>", ["run", "case.py"], "holds 2 .npz archives (a.npz, b.npz)"),
    "data --check of a folder of two .npz archives": (
        "<two npz>", ["data", "--check", "two"], "holds 2 .npz archives (a.npz, b.npz)"),
    "a 400-character study name (report failed: file name too long)": (_study(f'''
        return Study(name="{"s" * 400}", baseline=base, sections=[Section("A", [Cell("x")])])
    '''), None, "study name 'ssss"),
    "a 600-character cell label (PostgreSQL failed mid-run)": (_study(f'''
        return Study(name="c", baseline=base, sections=[Section("A", [Cell("{"c" * 600}")])])
    '''), None, "is 600 characters long; at most 500: give the cell a shorter name"),
    "a 300-character section name": (_study(f'''
        return Study(name="c", baseline=base, sections=[Section("{"a" * 300}", [Cell("x")])])
    '''), None, "is 300 characters long; at most 200: give the section a shorter name"),
    "an arch longer than its column": (_study('''
        return Study(name="c", baseline=base, sections=[Section("A", [Cell(
            "x", arch="a_rather_long_module_name:and_a_function")])])
    '''), None, "is 40 characters long; at most 32: shorten the module or function name"),
    "--memory lots on slurm (it ended in a traceback)": (
        {}, ["run", "tiny.py", "--backend", "slurm", "--memory", "lots"],
        "bad memory 'lots': give a size with its unit, e.g. 8GB"),
    "serve --token '' (it answered 401 to everything)": (
        {}, ["serve", "--token", ""], "--token is empty"),
    "serve --host 999.1.1.1 (it blamed a port in use)": (
        {}, ["serve", "--host", "999.1.1.1", "--token", "t"],
        "cannot listen on 999.1.1.1: not an address of this machine"),
    "upgrade of a zero-byte file (it said 'nothing to do')": (
        "<empty file>", ["upgrade", "--db", "zero.sqlite"],
        "zero.sqlite holds no cnnbench database: nothing to upgrade"),
    "upgrade --db of a directory": ("<a directory>", ["upgrade", "--db", "adir"],
                                    "adir is a directory, not a database file"),
    "serve --db of a directory": ("<a directory>", ["serve", "--db", "adir"],
                                  "adir is a directory, not a database file"),
    "compare --code-a of no such code version (it wrote an empty comparison)": (
        {}, ["compare", "tiny", "tiny", "--code-a", "zzz"],
        "study 'tiny' has no results of code version 'zzz'; it has: "),
    "a factor default of an unsupported type": (_study('''
        return Study(name="t", baseline=base, factors={"mix": [0.1]},
                     sections=[Section("A", [Cell("x", mix=[0.2])])])
    '''), None, "factor 'mix' has default [0.1] of type list; a factor's default is a "
                 "bool, int, float (finite) or str"),
    "a factor that shadows a built-in field": (_study('''
        return Study(name="t", baseline=base, factors={"lr": 0.1},
                     sections=[Section("A", [Cell("x", lr=0.2)])])
    '''), None, "factor 'lr' shadows the built-in field 'lr'"),
    "a misspelt factor in a cell": (_study('''
        return Study(name="t", baseline=base, factors={"label_smoothing": 0.0},
                     sections=[Section("A", [Cell("x"),
                                             Cell("y", label_smothing=0.1)])])
    '''), None, "case.py, line 9: unknown field 'label_smothing' in cell 'y'; did you mean "
                 "'label_smoothing'?"),
    "a factor of the wrong type in vary()": (_study('''
        return Study(name="t", baseline=base, factors={"label_smoothing": 0.0},
                     sections=[Section("A", vary("label_smoothing", [0.0, "0.1"]))])
    '''), None, "case.py, line 8: vary(): factor 'label_smoothing' must be float (the type "
                 "of its default, 0.0), got str '0.1'"),
    "a factor whose default changed since its jobs ran": ("<factor default changed>", None,
                                                           "the study now gives that job "
                                                           "ls=0.5"),
    "a piece that is not module:function": (_one_cell('loss="smoothed"'), None,
        "field 'loss' got 'smoothed'; valid choices: nll, or your own \"module:function\""),
    "a piece of a missing module": (_one_cell('step="nomod:step"'), None,
        "case.py, line 7: step 'nomod:step': no module 'nomod'"),
    "a piece of a missing function": (_one_cell('loss="mypieces:nothing"'), None,
        "case.py, line 7: loss 'mypieces:nothing': module 'mypieces'"),
    "a piece that raises when checked": (_one_cell('loss="mypieces:raising_loss"'), None,
        "case.py, line 7: loss 'mypieces:raising_loss' raised RuntimeError ("),
    "a loss returning a non-scalar": (_one_cell('loss="mypieces:vector_loss"'), None,
        "returned (4,); expected a scalar tensor"),
    "an optimizer returning no optimizer": (
        _one_cell('optimizer="mypieces:not_an_optimizer"'), None,
        "returned str, not a torch.optim.Optimizer"),
    "a metric returning a non-dict": (_one_cell('metrics=("mypieces:list_metric",)'), None,
        "metric 'mypieces:list_metric' returned list, expected a dict"),
    "a metric returning a non-number": (_one_cell('metrics=("mypieces:text_metric",)'), None,
        "returned ece='low' (str); each value must be a number"),
    "a metric named like a built-in": (
        _one_cell('metrics=("mypieces:shadowing_metric",)'), None,
        "returned 'test_accuracy', the name of a built-in measurement"),
    "a validation split as large as the training slice": (_one_cell('val_size=64'), None,
        "val_size 64 leaves no training samples of the 64 in its training slice"),
    "a claim on a metric no job records": (_study('''
        return Study(name="t", baseline=base, seeds=[0, 1],
                     sections=[Section("A", [Cell("x"), Cell("y", lr=0.1)])],
                     claims=[Claim.beats("y calibrates", "A", "y", "x", metric="ece",
                                         higher_is_better=False)])
    '''), None, "case.py, line 9: claim 'y calibrates' decides on 'ece', which the jobs of "
                 "cell 'x' do not record (they record: param_count, test_accuracy"),
    "a study deciding on a metric of its own without a direction": (_study('''
        return Study(name="t", baseline=base, metric="ece",
                     sections=[Section("A", [Cell("x")])])
    '''), None, "study 't': metric 'ece' is your own: say which way is better with "
                 "higher_is_better=True or False"),
    "a section on the validation split without one": (_study('''
        return Study(name="t", baseline=base,
                     sections=[Section("A", [Cell("x")], metric="val_accuracy")])
    '''), None, "section 'A' decides on 'val_accuracy', which the jobs of cell 'x' do not "
                 "record"),
    "a missing dataset on a new database (the file was made)": (
        _study(ONE_CELL.format(dataset="no/such")), ["run", "case.py", "--db", "fresh.sqlite"],
        "does not exist"),
}


@pytest.fixture(scope="module")
def finished_db(tmp_path_factory):
    """A database holding the finished tiny study (trained once for the module)."""
    from click.testing import CliRunner
    from conftest import STUDIES

    from benchmark.cli import main

    where = tmp_path_factory.mktemp("finished")
    shutil.copy(STUDIES / "tiny.py", where / "tiny.py")
    make_idx_dir(where / "idx")
    cwd = os.getcwd()
    os.chdir(where)
    try:
        result = CliRunner().invoke(main, ["run", "tiny.py", "--jobs", "1", "--db", "r.sqlite"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    con = sqlite3.connect(where / "r.sqlite")
    con.execute("pragma wal_checkpoint(truncate)")  # everything in the main file, for copying
    assert con.execute("select count(*) from runs").fetchone() == (4,)
    con.close()
    return where / "r.sqlite"


def _dump(db) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _prepare(workdir, files, finished_db, monkeypatch) -> None:
    shutil.copy(finished_db, workdir / "r.sqlite")
    monkeypatch.setenv("CNNBENCH_DB", str(workdir / "r.sqlite"))
    if files == "<truncated>":
        short = make_idx_dir(workdir / "short", 64, 20)
        images = short / "train-images-idx3-ubyte"
        images.write_bytes(images.read_bytes()[:3000])
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="short")))
    elif files in ("<not gzip>", "<damaged gzip>"):
        packed = make_idx_dir(workdir / "packed", 64, 20, gz=True)
        if files == "<not gzip>":
            (packed / "train-images-idx3-ubyte.gz").write_bytes(b"plain text, not gzip " * 20)
        else:  # a valid gzip header, then a deflate stream damaged in its first block
            images = packed / "t10k-images-idx3-ubyte.gz"
            raw = bytearray(images.read_bytes())
            raw[12:40] = b"x" * 28
            images.write_bytes(bytes(raw))
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="packed")))
    elif files == "<small images>":
        small = workdir / "small"
        small.mkdir()
        rng = np.random.default_rng(0)
        for name, n in (("train", 64), ("t10k", 20)):
            write_idx(small / f"{name}-images-idx3-ubyte", rng.integers(0, 255, (n, 11, 11)))
            write_idx(small / f"{name}-labels-idx1-ubyte", rng.integers(0, 10, n))
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="small")))
    elif files == "<wrong shape>":
        odd = make_idx_dir(workdir / "odd", 64, 20)
        images = odd / "train-images-idx3-ubyte"
        raw = bytearray(images.read_bytes())
        raw[8:16] = (14).to_bytes(4, "big") + (56).to_bytes(4, "big")  # 28x28 -> 14x56
        images.write_bytes(bytes(raw))
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="odd")))
    elif files == "<corrupt cache>":
        cache = workdir / "mnist-cache"
        cache.mkdir(exist_ok=True)
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            (cache / name).write_bytes(b"not mnist")
        monkeypatch.setenv("CNNBENCH_DATA", str(cache))
    elif files == "<stray label>":
        stray = make_idx_dir(workdir / "stray", 64, 20)
        labels = np.arange(64) % 10
        labels[5] = 200
        write_idx(stray / "train-labels-idx1-ubyte", labels)
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="stray")))
    elif files == "<two npz>":
        two = workdir / "two"
        two.mkdir()
        arrays = np.zeros((8, 12, 12), np.uint8), np.arange(8) % 2
        for name in ("a.npz", "b.npz"):
            np.savez(two / name, x_train=arrays[0], y_train=arrays[1], x_test=arrays[0],
                     y_test=arrays[1])
        (workdir / "case.py").write_text(_study(ONE_CELL.format(dataset="two")))
    elif files == "<factor default changed>":  # jobs of default ls=0.0 synced, then 0.5
        from benchmark.store import ResultStore
        from benchmark.studyfile import load_study

        factor_study = _study('''
            return Study(name="f", baseline=base, factors={{"ls": {default}}},
                         sections=[Section("A", vary("ls", [0.0, 0.5]))])
        ''')
        (workdir / "case.py").write_text(factor_study.format(default=0.0))
        make_idx_dir(workdir / "idx", 64, 20)
        loaded = load_study(workdir / "case.py")
        store = ResultStore(f"sqlite:///{workdir / 'r.sqlite'}")
        store.sync_study("f", str(loaded.path), loaded.file_hash, "", loaded.study.sections,
                         loaded.specs, factors=loaded.study.factors)
        store.close()
        (workdir / "case.py").write_text(factor_study.format(default=0.5))
    elif files == "<empty file>":
        (workdir / "zero.sqlite").write_bytes(b"")
    elif files == "<a directory>":
        (workdir / "adir").mkdir()
    elif files == "<newer db>":
        con = sqlite3.connect(workdir / "r.sqlite")
        con.execute("update cnnbench_meta set value=?", (str(SCHEMA_VERSION + 1),))
        con.commit()
        con.close()
    elif files in ("<foreign db>", "<foreign wal db>"):
        con = sqlite3.connect(workdir / "foreign.sqlite")
        if files == "<foreign wal db>":
            con.execute("pragma journal_mode=wal")
        con.execute("create table customers (id integer)")
        con.execute("insert into customers values (1)")
        con.commit()
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()
    elif isinstance(files, dict):
        for path, content in files.items():
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).write_text(content)
    elif files.endswith(".py") and files != "case.py":
        pass  # a fixture study file, already in workdir
    else:
        (workdir / "case.py").write_text(files)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_cleanly_and_changes_nothing(name, workdir, cli, finished_db,
                                                          monkeypatch):
    files, args, message = CASES[name]
    _prepare(workdir, files, finished_db, monkeypatch)
    if args is None:
        study = files if isinstance(files, str) and files.endswith(".py") else "case.py"
        args = ["run", study]
    databases = [workdir / "r.sqlite"] + [workdir / a for a, flag in zip(args[1:], args[:-1],
                                                                          strict=True)
                                          if flag == "--db"]
    before = {db: db.read_bytes() if db.is_file() else None for db in databases}
    dump = _dump(workdir / "r.sqlite")
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    for db, content in before.items():  # byte for byte; a missing one is not created
        assert (db.read_bytes() if db.is_file() else None) == content, db
        for suffix in ("-wal", "-shm", "-journal"):
            assert not db.with_name(db.name + suffix).exists(), suffix
    assert _dump(workdir / "r.sqlite") == dump
    assert not (workdir / "results").exists()

