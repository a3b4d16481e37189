"""Provenance: which code produced a result, and where.

`code_version()` is the training-behaviour version: a label that changes when, and
only when, a change to the nets or the training loop may change a job's results, so
results of older training code are recognisable (STALE) and rerun, while an edit that
changes no result (a comment, a refactor, a faster path with the same numbers) keeps
every stored result current. `tests/test_golden.py` guards it: fixed tiny jobs must
reproduce their stored per-epoch losses, and when they do not, the test says to bump
the version. The config vocabulary is not part of it: every field of a job's config is
in its key already. Data files are verified by checksum instead. No torch here.
"""

from __future__ import annotations

import platform
import socket

# Bump when a change may alter any job's results (initial weights, batch order, numerics,
# layers); tests/test_golden.py fails until you do. The first explicit version is the
# hash of nets.py + train.py that the version used to be, so results stored by that code
# stay current.
TRAINING_VERSION = "0c7d2a393f03"


def code_version() -> str:
    return TRAINING_VERSION


def host() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()
