"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s wheel` (a plain install),
`nox -s quick` (the quick study),
`nox -s perf` (throughput), `nox -s sequential` (the sequential rule's simulation),
`nox -s dashboard` (the dashboard at scale)."""

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "wheel"]

# PyTorch is installed first and pinned, so pip never resolves a different multi-GB
# build. Override for another platform, e.g. CNNBENCH_TORCH="torch torchvision".
TORCH = os.environ.get("CNNBENCH_TORCH", "torch==2.14.1 torchvision==0.29.1").split()


def install(session: nox.Session, *extras: str) -> None:
    session.install(*TORCH)
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: fast, offline, CPU; GPU tests are skipped without CUDA.

    Under CI (the CI environment variable set), MNIST and Fashion-MNIST are fetched first
    for the tests on the real data, and any skip other than a CUDA test fails the run
    (tests/conftest.py).
    """
    install(session, "test")
    if os.environ.get("CI"):
        session.run("cnnbench", "data", "--fetch")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "benchmark", "perf", "tests", "studies", "noxfile.py")


@nox.session
def wheel(session: nox.Session) -> None:
    """A plain, non-editable install works: build the wheel, install it in this fresh
    environment, and run `cnnbench --help` and a dry run of the quick study from a folder
    outside the checkout (so nothing is imported from the source tree)."""
    session.install(*TORCH)
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # Built from a clean copy of the source: an editable install (the tests session's)
    # leaves cnnbench.egg-info in the checkout, whose file list setuptools would take as
    # package data, putting in the wheel what the packaging itself leaves out.
    source = _clean_source(Path(session.create_tmp()) / "source")
    session.run("python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                str(dist), str(source))
    (built,) = dist.glob("cnnbench-*.whl")
    session.install(str(built))
    elsewhere = Path(session.create_tmp()) / "elsewhere"
    shutil.rmtree(elsewhere, ignore_errors=True)
    elsewhere.mkdir(parents=True)
    shutil.copytree("studies", elsewhere / "studies")  # mnist_quick imports mnist_ablation
    with session.chdir(elsewhere):
        session.run("python", "-c", "import benchmark, sys; "
                    "sys.exit(0 if 'site-packages' in benchmark.__file__ else "
                    "f'benchmark imported from {benchmark.__file__}, not the wheel')")
        session.run("cnnbench", "--help", silent=True)
        session.run("cnnbench", "run", "studies/mnist_quick.py", "--dry-run",
                    "--db", str(elsewhere / "none.sqlite"))


def _clean_source(to: Path) -> Path:
    """The checkout's own files (git's tracked and not ignored ones, else the tree without
    build state) copied to `to`."""
    shutil.rmtree(to, ignore_errors=True)
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        shutil.copytree(".", to, ignore=shutil.ignore_patterns(
            "*.egg-info", "build", "dist", ".nox", ".venv", "venv", ".git", "__pycache__"))
        return to
    for name in filter(None, listed.stdout.decode().split("\0")):
        if Path(name).is_file():  # a file deleted but not yet staged is listed too
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(name, to / name)
    return to


@nox.session
def quick(session: nox.Session) -> None:
    """Fetch MNIST if needed, run studies/mnist_quick.py, write its report."""
    install(session)
    session.run("cnnbench", "data", "--fetch")
    session.run("cnnbench", "run", "studies/mnist_quick.py", *session.posargs)
    session.run("cnnbench", "list", "studies/mnist_quick.py")
    session.run("cnnbench", "report", "studies/mnist_quick.py")


@nox.session
def perf(session: nox.Session) -> None:
    """Throughput of cnnbench's trainer against the classic DataLoader loop (figures + JSON)."""
    install(session)
    session.run("python", "perf/throughput.py", *session.posargs)


@nox.session
def sequential(session: nox.Session) -> None:
    """The verdicts' error rates by simulation, each with its Monte Carlo interval: the
    fixed-n closed test, the sequential rule for every spending, P(better)'s coverage
    (numpy and scipy; no torch, no training). `nox -s sequential -- --policy
    benchmark/error_rates.json` also refreshes the figures every report quotes."""
    install(session)
    session.run("python", "perf/sequential.py", *session.posargs)


@nox.session
def dashboard(session: nox.Session) -> None:
    """Server time of the dashboard's pages and updates on a synthetic database of 10,000
    jobs and 200,000 epochs (figures + JSON)."""
    install(session, "test")
    session.run("python", "perf/dashboard.py", *session.posargs)
