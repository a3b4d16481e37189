"""What the dashboard shows, as plain JSON-able data: a thin view over the store, `state`
and `aggregate` (the report's own statistics), with no web framework in it.

- `studies`: the index: each study's cells, jobs by status, last activity, code versions.
- `study`: one study's sections and cells, and every cell run (`jobs`, the grid as a
  matrix: section x cell x seed) with its status, epochs done, retries and failures.
- `summary`: the effects and claims tables with their verdicts (the report's code) and
  the learning curves per section (mean and 95% interval across seeds, live epochs of
  running jobs included), cached until the study's next recorded run.
- `updates`: what changed after a cursor: cell runs whose job changed, new live epochs,
  whether the summary moved; and the next cursor.
- `job`: one job's config, state, runs (provenance, traceback) and curve.

Reads only (the store it is given is a reader's); no torch.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from . import aggregate, sequential_verdicts, state
from .outcome import ACCURACY
from .provenance import code_version, host
from .records import JobStatus
from .store import ResultStore, now

CLOCK_SLACK = timedelta(seconds=5)  # runners' clocks differ: changes re-sent, never missed


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="milliseconds") + "Z" if t is not None else None


def _num(x) -> float | None:
    """A JSON number, or null for NaN/None/inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def studies(store: ResultStore) -> list[dict]:
    code = code_version()
    out = []
    for row in store.studies_overview():
        by_status: dict[str, int] = {}
        versions = set()
        cells = 0
        for group in row["groups"]:
            shown = (JobStatus.SKIPPED if group.skipped
                     else state.shown_status(group.status, group.code_version, code))
            by_status[shown.value] = by_status.get(shown.value, 0) + group.count
            cells += group.count
            if group.code_version and not group.skipped:
                versions.add(group.code_version)
        out.append({"name": row["name"], "description": row["description"],
                    "cell_runs": cells, "jobs_by_status": by_status,
                    "last_activity": _iso(row["last_activity"]),
                    "synced_at": _iso(row["synced_at"]),
                    "code_versions": sorted(versions), "current_code_version": code})
    return out


def _jobs(rows, code: str, at: datetime, here: str) -> list[dict]:
    """Cell runs (`CellRun`s of `ResultStore.cell_runs`) as the API's job entries, each
    status by `state` (the one definition): `state.shown_status`, and `state.derive` for a
    RUNNING job (whose runner may have died). Lean: a study page builds ten thousand."""
    out = []
    for r in rows:
        dead = False
        if r.skip_reason:
            status = _SKIPPED
        elif r.status == _RUNNING:
            derived = state.derive(r.status, r.code_version, r.lease_expires, r.runner_host,
                                   r.runner_pid, None, code, at=at, here=here,
                                   alive=state.pid_alive)
            status, dead = derived.status.value, derived.reclaimable
        else:
            status = state.shown_status(_STATUS[r.status], r.code_version, code).value
        running = status == _RUNNING
        accuracy = r.test_accuracy
        out.append({"key": r.job_key, "section": r.section, "cell": r.cell, "seed": r.seed,
                    "status": status,
                    "epochs_done": (r.live_epochs if running else r.epochs_done) or 0,
                    "epochs": r.epochs, "attempts": r.attempts, "runs": r.runs or 0,
                    "failures": r.failures or 0,
                    "test_accuracy": None if running or accuracy is None
                    or accuracy != accuracy else accuracy,
                    "dead_runner": dead, "skip_reason": r.skip_reason})
    return out


_STATUS = {s.value: s for s in JobStatus}
_RUNNING, _SKIPPED = JobStatus.RUNNING.value, JobStatus.SKIPPED.value


def _cursor(marks: dict) -> str:
    t = marks["updated_at"]
    return f"{marks['run_id']}.{marks['live_epoch_id']}.{t.isoformat() if t else ''}"


def parse_cursor(text: str) -> tuple[int, int, datetime | None]:
    """(run id, live epoch id, job-change time) of a cursor; ValueError when malformed."""
    run_id, live_id, t = text.split(".", 2)
    return int(run_id), int(live_id), datetime.fromisoformat(t) if t else None


def study(store: ResultStore, name: str) -> dict | None:
    info = store.study_info(name)
    if info is None:
        return None
    code, at, here = code_version(), now(), host()
    marks = store.marks(name)
    rows = store.cell_runs(name)
    jobs = _jobs(rows, code, at, here)
    cells: dict[str, dict[str, None]] = {}
    for r in rows:
        cells.setdefault(r.section, {})[r.cell] = None
    return {"name": name, "description": info["description"], "path": info["path"],
            "margin_pp": info["margin_pp"], "sequential": info["design"] is not None,
            "code_version": code, "outcome": info["outcome"].to_dict(),
            "sections": [{**sec, "outcome": sec["outcome"].to_dict(),
                          "cells": list(cells.get(sec["name"], {}))}
                         for sec in info["sections"]],
            "seeds": sorted({j["seed"] for j in jobs}),
            "jobs": jobs, "cursor": _cursor(marks)}


def updates(store: ResultStore, name: str, after: str) -> dict:
    run_id, live_id, t = parse_cursor(after)
    code, at, here = code_version(), now(), host()
    marks = store.marks(name)
    since = t - CLOCK_SLACK if t is not None else None  # a runner whose clock lags
    changed = [] if since is not None and marks["updated_at"] is not None and (
        marks["updated_at"] <= since) else store.cell_runs(name, changed_after=since)
    live = store.live_epochs(study=name, after=live_id)
    live = live.drop_duplicates("live_epoch_id") if len(live) else live
    epochs = [{"key": r.job_key, "epoch": int(r.epoch), "test_accuracy": _num(r.test_accuracy),
               "train_loss": _num(r.train_loss)} for r in live.itertuples()] if len(live) else []
    return {"jobs": _jobs(changed, code, at, here), "epochs": epochs,
            "summary_changed": marks["run_id"] > run_id or bool(epochs),
            "cursor": _cursor(marks)}


class _Summary:
    """One study's summary, kept per section so that a new run costs only its sections:
    effects by section, claim rows by claim index, the curve sums, and the run of each job
    they hold (so that a job's newer run can take its older one's place)."""

    def __init__(self):
        self.mark = 0  # the newest run it includes
        self.effects: dict[str, list[dict]] = {}
        self.claims: dict[int, dict] = {}
        self.sums = pd.DataFrame()
        self.runs: dict[int, int] = {}  # job id -> the run its curve points come from


class SummaryCache:
    """Effects, claims and finished curves of each study (at most `size` studies: memory
    stays bounded), brought up to date at each request from the runs recorded since:
    only the sections and jobs those runs touch are computed again."""

    def __init__(self, size: int = 8):
        self.size, self._items = size, OrderedDict()

    def get(self, store: ResultStore, name: str) -> dict:
        code = code_version()
        info = store.study_info(name) or {}
        mark = store.marks(name)["run_id"]  # read first: a run recorded meanwhile comes next time
        design = info.get("design")
        key = (store.url, name, code, info.get("margin_pp"), repr(design),
               tuple(info.get("claims") or ()), tuple(s["name"] for s in info.get("sections", ())))
        entry = self._items.get(key)
        if entry is None:
            entry = _Summary()
            _refresh(store, name, code, info, entry, None, None)
            entry.mark = mark
            self._items[key] = entry
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        elif entry.mark != mark:
            changed = store.changed_since(name, entry.mark)
            _refresh(store, name, code, info, entry, {c.job_id for c in changed},
                     {c.section for c in changed})
            entry.mark = mark
        self._items.move_to_end(key)
        order = [s["name"] for s in info.get("sections", ())]
        return {"effects": [r for sec in order for r in entry.effects.get(sec, [])],
                "claims": [entry.claims[i] for i in sorted(entry.claims)],
                "margin_pp": info.get("margin_pp"), "sums": entry.sums}


def _refresh_claims(store: ResultStore, name: str, code: str, claims, margin, design,
                    entry: _Summary, outcome=ACCURACY) -> tuple[dict, int]:
    """The claims' verdicts, all at once: they form one family, so each depends on every
    claim's results (the whole study's frame is read). Returns the table rows' mapping
    to the claims that make them and the claims' family size (`aggregate.effects`'s
    `claim_verdicts` and `claims_family`)."""
    entry.claims.clear()
    if not claims:
        return {}, 1
    frame = store.results_frame(name)
    good = state.usable(frame, code) if len(frame) else frame
    if not len(good):
        return {}, 1
    judged = sequential_verdicts.judge(good, claims, margin, design, outcome)
    table = pd.concat([t for t in (judged.table, judged.trends) if t is not None])
    for i, (_, r) in enumerate(table.iterrows()):
        entry.claims[i] = {"claim": r["claim"], "section": r["section"],
                           "verdict": r["verdict"], "evidence": r["evidence"]}
    return judged.rows, judged.family


def _refresh(store: ResultStore, name: str, code: str, info: dict, entry: _Summary,
             jobs: set[int] | None, sections: set[str] | None) -> None:
    """Compute `entry` again for `sections` and `jobs` (None: all of them), by the
    report's statistics (`aggregate.effects`, `check_claims`, `sequential_claims`): a
    section's effects read its own cells only, but the claims are one family across the
    study, so with claims every section is computed again."""
    margin, design = info.get("margin_pp"), info.get("design")
    claims = list(info.get("claims") or ())
    outcome = info.get("outcome") or ACCURACY
    outcomes = {s["name"]: s.get("outcome") or outcome for s in info.get("sections", ())}
    if sections is None or sections:
        claimed, family = _refresh_claims(store, name, code, claims, margin, design, entry,
                                          outcome)
        if claims:  # a claim's verdict, shown in its table row, depends on every section
            sections = None
        frame = store.results_frame(name, sections=None if sections is None else sorted(sections))
        good = state.usable(frame, code) if len(frame) else frame
        eff = (aggregate.effects(good, margin, claimed, family, outcomes=outcomes,
                                 study_outcome=outcome) if len(good)
               else pd.DataFrame())
        for sec in ([s["name"] for s in info.get("sections", ())] if sections is None
                    else sections):
            rows = eff[eff["section"] == sec] if len(eff) else eff
            entry.effects[sec] = [
                {"section": r["section"], "cell": r["cell"], "baseline": r["baseline"],
                 "diff": _num(r["diff"]), "ci_low": _num(r["ci_low"]),
                 "ci_high": _num(r["ci_high"]), "p": _num(r["p"]),
                 "level": _num(r["step_level"]), "method": r["method"],
                 "verdict": r["verdict"], "metric": outcomes[sec].label,
                 "percent": outcomes[sec].percent}
                for _, r in rows.iterrows()]
    if jobs is None:
        entry.sums, entry.runs = store.curve_sums(name, code)
    elif jobs:  # take the changed jobs' old runs out of the sums, put their new ones in
        old = [entry.runs.pop(j) for j in jobs if j in entry.runs]
        new = store.latest_complete_runs(code, jobs)
        entry.runs.update(new)
        sums = (entry.sums.set_index(_CURVE_KEY)
                .sub(_sums(store.curve_points(name, old)).set_index(_CURVE_KEY), fill_value=0)
                .add(_sums(store.curve_points(name, new.values())).set_index(_CURVE_KEY),
                     fill_value=0).reset_index())
        sums = sums[sums["n"] > 0]
        entry.sums = sums.assign(n=sums["n"].astype(int)).reset_index(drop=True)


_CURVE_KEY = ["section", "cell", "position", "epoch"]


def _sums(points: pd.DataFrame) -> pd.DataFrame:
    """Per (section, cell, position, epoch): count, sum and sum of squares of `acc`."""
    if not len(points):
        return pd.DataFrame(columns=[*_CURVE_KEY, "n", "sum", "sumsq"])
    return (points.assign(n=1, sum=points["acc"], sumsq=points["acc"] ** 2)
            .groupby(_CURVE_KEY, as_index=False)[["n", "sum", "sumsq"]].sum())


def summary(store: ResultStore, name: str, cache: SummaryCache) -> dict:
    """Effects and claims of the recorded runs, and curves with the live epochs added."""
    finished = cache.get(store, name)
    live = store.live_epochs(study=name)
    sums = finished["sums"]
    if len(live):
        live = live[live["test_accuracy"].notna()]
        extra = (live.assign(n=1, sum=live["test_accuracy"], sumsq=live["test_accuracy"] ** 2)
                 .groupby(["section", "cell", "position", "epoch"], as_index=False)
                 [["n", "sum", "sumsq"]].sum())
        if len(extra):
            sums = (pd.concat([sums, extra], ignore_index=True)
                    .groupby(["section", "cell", "position", "epoch"], as_index=False)
                    [["n", "sum", "sumsq"]].sum()) if len(sums) else extra
    return {"effects": finished["effects"], "claims": finished["claims"],
            "margin_pp": finished["margin_pp"], "curves": _curves(sums)}


def _curves(sums: pd.DataFrame) -> dict[str, list[dict]]:
    """Section -> one series per cell: epochs with mean and 95% t interval across seeds
    (clipped to 0-100 %), computed for every point at once."""
    out: dict[str, list[dict]] = {}
    if not len(sums):
        return out
    sums = sums.sort_values(["section", "position", "epoch"], kind="stable")
    n = sums["n"].to_numpy(dtype=float)
    mean = sums["sum"].to_numpy(dtype=float) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum((sums["sumsq"].to_numpy(dtype=float) - n * mean * mean) / (n - 1), 0)
        half = np.where(n > 1, stdtrit(np.maximum(n - 1, 1), 0.975) * np.sqrt(var / n), np.nan)
    columns = [sums["epoch"].to_numpy(dtype=int).tolist(), n.astype(int).tolist(),
               *(np.round(x, 4).tolist() for x in (mean, np.clip(mean - half, 0, 100),
                                                  np.clip(mean + half, 0, 100)))]
    names = ("epoch", "n", "mean", "low", "high")
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
             for k, v in zip(names, values, strict=True)}
            for values in zip(*columns, strict=True)]
    section, cell = sums["section"].tolist(), sums["cell"].tolist()
    start = 0
    for i in range(1, len(rows) + 1):  # a cell's points are contiguous once sorted
        if i == len(rows) or (section[i], cell[i]) != (section[start], cell[start]):
            out.setdefault(section[start], []).append({"cell": cell[start],
                                                       "points": rows[start:i]})
            start = i
    return out


def job(store: ResultStore, key: str) -> dict | None:
    detail = store.job_detail(key)
    if detail is None:
        return None
    jsonable = {k: _iso(v) if isinstance(v, datetime) else v for k, v in detail.items()}
    jsonable["runs"] = [{k: _iso(v) if isinstance(v, datetime) else
                         (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
                        for r in detail["runs"]]
    for part in ("epochs", "live_epochs"):
        jsonable[part] = [{k: _num(v) if isinstance(v, float) else v for k, v in e.items()}
                          for e in detail[part]]
    return jsonable
