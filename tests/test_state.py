"""`benchmark.state`: one definition of where a job stands, and the store's atomic claim
agreeing with it on every stored status."""

import os
from datetime import datetime, timedelta

import pytest
from test_store import SPECS, _result, _store

from benchmark import JobStatus, state
from benchmark.store import Runner

NOW = datetime(2026, 12, 2, 12, 0)


def _derive(stored, result_code="v1", lease=NOW + timedelta(minutes=1), host="elsewhere",
            pid=7, alive=lambda pid: True):
    return state.derive(stored, result_code, lease, host, pid, 97.0, "v1", at=NOW,
                        here="here", alive=alive)


def test_done_current_stale_and_dead_runners_are_told_apart():
    assert _derive("COMPLETE").status == JobStatus.COMPLETE
    assert _derive("COMPLETE").test_accuracy == 97.0
    assert _derive("DIVERGED", "v0").status == JobStatus.STALE  # other code: stale
    assert _derive("COMPLETE", "v0").test_accuracy == 97.0  # shown beside STALE, in list
    assert _derive("FAILED", "v0").status == JobStatus.FAILED  # not done: never stale
    assert _derive("RUNNING").test_accuracy is None  # nothing finished to show
    assert not _derive("RUNNING").reclaimable  # live lease, another host
    assert _derive("RUNNING", lease=NOW - timedelta(seconds=1)).reclaimable  # expired
    assert _derive("RUNNING", lease=None).reclaimable
    here = dict(host="here", alive=lambda pid: pid != 7)
    assert _derive("RUNNING", **here).reclaimable  # its process on this host is gone
    assert not _derive("RUNNING", pid=8, **here).reclaimable


def test_a_grid_waits_while_anything_is_pending_running_or_stale():
    assert state.finished({JobStatus.COMPLETE: 3, JobStatus.FAILED: 1, JobStatus.SKIPPED: 2})
    for waiting in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.STALE):
        assert not state.finished({JobStatus.COMPLETE: 3, waiting: 1})


CASES = [(stored, cv) for stored in ("PENDING", "COMPLETE", "DIVERGED", "FAILED", "RUNNING",
                                    "RUNNING, lease expired")
         for cv in ("v1", "v0")]


@pytest.mark.parametrize("retry_failed", [False, True])
def test_the_store_claims_exactly_what_state_calls_runnable(tmp_path, retry_failed):
    """Each stored status, with a result (or a claim) of this code version or another,
    RUNNING under a live lease or an expired one: `state.runnable` of the job's state and
    what a run may take (the store's `reclaim`, then its atomic `claim`) agree, so the
    runner's plan and what it trains are one rule."""
    from benchmark.store import leases

    seen = {}
    for i, (stored, cv) in enumerate(CASES):
        store = _store(tmp_path, f"{i}.sqlite")
        key = next(s.key for s in SPECS if not s.skip_reason)
        me, other = Runner("me", "h", 1), Runner("other", "h", 2)
        lease = timedelta(seconds=-1) if "expired" in stored else leases.LEASE
        if stored != "PENDING":
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(leases, "LEASE", lease)
                assert store.claim(key, me, cv)
        if not stored.startswith(("PENDING", "RUNNING")):
            store.record(_result(key, JobStatus(stored), cv=cv), me)
        planned = state.runnable(store.job_states([key], "v1")[key], retry_failed)
        store.reclaim()
        assert planned == store.claim(key, other, "v1", retry_failed), (stored, cv)
        seen[stored, cv] = planned
        store.close()
    runnable = {case for case, yes in seen.items() if yes}
    assert runnable == {("PENDING", "v1"), ("PENDING", "v0"), ("COMPLETE", "v0"),
                        ("DIVERGED", "v0"), ("RUNNING, lease expired", "v1"),
                        ("RUNNING, lease expired", "v0"),
                        *((("FAILED", "v1"), ("FAILED", "v0")) if retry_failed else ())}


LEASES = {"none": None, "expired": timedelta(seconds=-5), "live": timedelta(minutes=5)}


@pytest.mark.parametrize("lease", LEASES)
def test_the_store_reclaims_exactly_what_state_calls_a_dead_runner(tmp_path, lease):
    """A RUNNING row with no lease, an expired or a live one, held on this host or another,
    by a process that is alive, gone, or unknown: `state.derive`'s `reclaimable` and the
    store's `reclaim` agree, so what status shows as a dead runner's job is what the next
    run takes back."""
    import sqlite3
    import subprocess
    import sys

    from benchmark import provenance
    from benchmark.store import now

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here, key = provenance.host(), next(s.key for s in SPECS if not s.skip_reason)
    for i, (host, pid) in enumerate((h, p) for h in (here, "elsewhere")
                                    for p in (None, os.getpid(), gone.pid)):
        store = _store(tmp_path, f"{i}.sqlite")
        assert store.claim(key, Runner("r", "h", 1), "v1")
        expires = None if LEASES[lease] is None else now() + LEASES[lease]
        con = sqlite3.connect(tmp_path / f"{i}.sqlite")
        con.execute("update jobs set lease_expires = ?, runner_host = ?, runner_pid = ? "
                    "where job_key = ?", (expires and str(expires), host, pid, key))
        con.commit()
        con.close()
        dead = store.job_states([key], "v1")[key].reclaimable
        assert store.reclaim() == int(dead), (lease, host, pid)
        store.close()
