"""Provenance: which code produced a result, and where.

`code_version()` hashes the source of the modules that decide what a job computes
(the nets and the training loop), so results from older training code are recognisable
and rerun. The config vocabulary is not among them: every field of a job's config is in
its key already. Data files are verified by checksum instead. No torch here.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import socket
from pathlib import Path

# Modules whose source decides what a job computes; the CLI, store and reports do not.
RESULT_MODULES = ("nets.py", "train.py")


@functools.cache
def code_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in RESULT_MODULES:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


def host() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()
