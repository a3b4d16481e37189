"""`cnnbench serve`: the JSON API and pages through Starlette's test client, its safety
(token, escaping, static paths, no writes) and its command-line errors."""

import socket
import sqlite3
from collections import Counter
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient
from test_store import SPECS, STUDY, _result

from benchmark.provenance import code_version
from benchmark.records import EpochMetrics, JobStatus
from benchmark.serve import make_app
from benchmark.store import ResultStore, Runner
from benchmark.study import Cell, Section

HOSTILE = "<script>alert('x')</script>"
KEYS = sorted({s.key for s in SPECS if not s.skip_reason})


def _database(path, name="s", description="a study"):
    """A study of 6 cell runs (4 jobs): two jobs COMPLETE, one RUNNING with a live epoch
    written, one PENDING; returns the writer store and the runner holding the job."""
    store = ResultStore(f"sqlite:///{path}")
    store.sync_study(name, "s.py", "hash", description, STUDY.sections, SPECS, STUDY.claims)
    me = Runner("me", "elsewhere", 1)
    for key in KEYS[:2]:
        assert store.claim(key, me, code_version())
        store.record(_result(key, cv=code_version()), me)
    assert store.claim(KEYS[2], me, code_version())
    store.record_epochs(me, [(KEYS[2], EpochMetrics(1, 0.5, 0.4, 88.0, 1.0))])
    return store, me


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.sqlite"
    writer, me = _database(path)
    yield path, writer, me
    writer.close()


@pytest.fixture
def client(db):
    reader = ResultStore(f"sqlite:///{db[0]}", read_only=True)
    with TestClient(make_app(reader)) as c:
        yield c
    reader.close()


def test_the_api_lists_studies_cell_runs_and_jobs(client):
    studies = client.get("/api/studies").json()["studies"]
    assert [s["name"] for s in studies] == ["s"]
    expected = Counter("COMPLETE" if s.key in KEYS[:2] else "RUNNING" if s.key == KEYS[2]
                       else "PENDING" for s in SPECS)
    assert studies[0]["jobs_by_status"] == dict(expected)
    assert studies[0]["cell_runs"] == 6 and studies[0]["last_activity"]
    study = client.get("/api/studies/s").json()
    assert len(study["jobs"]) == 6 and [s["name"] for s in study["sections"]] == ["A", "B"]
    for job in study["jobs"]:
        assert {"key", "section", "cell", "seed", "status", "epochs_done"} <= set(job)
    running = [j for j in study["jobs"] if j["status"] == "RUNNING"]
    assert {j["key"] for j in running} == {KEYS[2]} and running[0]["epochs_done"] == 1
    done = [j for j in study["jobs"] if j["status"] == "COMPLETE"]
    assert all(j["epochs_done"] == 2 and j["test_accuracy"] == 97.5 for j in done)
    job = client.get(f"/api/jobs/{KEYS[0]}").json()
    assert job["config"]["train_size"] == 100 and job["runs"][0]["status"] == "COMPLETE"
    assert [e["epoch"] for e in job["epochs"]] == [1, 2]
    live = client.get(f"/api/jobs/{KEYS[2]}").json()
    assert live["status"] == "RUNNING"
    assert [e["test_accuracy"] for e in live["live_epochs"]] == [88.0]
    assert client.get("/api/studies/nope").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/api/studies/s/updates?after=garbage").status_code == 400
    assert client.post("/api/studies").status_code == 405  # no route writes


def test_the_summary_is_the_reports_statistics_with_live_epochs_in_the_curves(client):
    summary = client.get("/api/studies/s/summary").json()
    assert [c["claim"] for c in summary["claims"]] == [c.text for c in STUDY.claims]
    curves = summary["curves"]["A"]
    points = {c["cell"]: c["points"] for c in curves}
    running_cell = next(j for j in client.get("/api/studies/s").json()["jobs"]
                        if j["key"] == KEYS[2] and j["section"] == "A")["cell"]
    assert any(p["mean"] == 88.0 or p["n"] >= 1 for p in points[running_cell])
    first = {c["cell"]: c["points"][0] for c in curves}
    assert all(p["epoch"] == 1 for p in first.values())


def test_updates_carry_only_what_changed_after_the_cursor(client, db):
    _, writer, me = db
    cursor = client.get("/api/studies/s").json()["cursor"]
    quiet = client.get("/api/studies/s/updates", params={"after": cursor}).json()
    assert quiet["epochs"] == [] and not quiet["summary_changed"]
    writer.record_epochs(me, [(KEYS[2], EpochMetrics(2, 0.3, 0.2, 93.0, 1.0))])
    moved = client.get("/api/studies/s/updates", params={"after": quiet["cursor"]}).json()
    assert [(e["key"], e["epoch"], e["test_accuracy"]) for e in moved["epochs"]] == [
        (KEYS[2], 2, 93.0)]
    assert moved["summary_changed"]  # a live epoch moves the learning curves
    writer.record(_result(KEYS[2], cv=code_version()), me)
    done = client.get("/api/studies/s/updates", params={"after": moved["cursor"]}).json()
    assert done["summary_changed"] and done["epochs"] == []
    assert {j["status"] for j in done["jobs"] if j["key"] == KEYS[2]} == {"COMPLETE"}
    after = client.get("/api/studies/s/updates", params={"after": done["cursor"]}).json()
    assert not after["summary_changed"] and after["epochs"] == []


def test_a_token_guards_every_route_when_set(db):
    reader = ResultStore(f"sqlite:///{db[0]}", read_only=True)
    with TestClient(make_app(reader, token="sesame")) as c:
        for path in ("/", "/study/s", "/api/studies", "/api/studies/s", "/static/dashboard.js"):
            assert c.get(path).status_code == 401, path
        assert c.get("/api/studies", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/studies", headers={"Authorization": "Bearer sesame"}).status_code == 200
        page = c.get("/study/s", params={"token": "sesame"})  # sets the page's cookie
        assert page.status_code == 200 and "cnnbench_token" in page.headers["set-cookie"]
        assert c.get("/api/studies").status_code == 200  # the cookie now
    reader.close()


def test_strings_from_the_database_never_become_markup(tmp_path):
    path = tmp_path / "x.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    sections = [Section(HOSTILE, [Cell("base"), Cell(HOSTILE, batch_norm=True)],
                        title=HOSTILE)]
    from benchmark.config import TrainConfig
    from benchmark.plan import expand
    from benchmark.study import Study

    study = Study(HOSTILE, TrainConfig(train_size=100), seeds=[0, 1], sections=sections,
                  description=HOSTILE)
    store.sync_study(HOSTILE, "x.py", "hash", HOSTILE, study.sections, expand(study))
    store.close()
    reader = ResultStore(f"sqlite:///{path}", read_only=True)
    with TestClient(make_app(reader)) as c:
        name = quote(HOSTILE, safe="")
        for url in ("/", "/study/" + name, f"/compare?a={name}&b={name}", f"/study/{name}x",
                    f"/compare?a={name}&b=x"):
            page = c.get(url)
            assert page.status_code == 200, url
            assert "<script>alert" not in page.text, url
            assert "default-src 'none'" in page.headers["content-security-policy"]
        assert c.get("/api/studies").json()["studies"][0]["name"] == HOSTILE  # data intact
        assert c.get(f"/api/studies/{name}").json()["sections"][0]["title"] == HOSTILE
        assert c.get(f"/api/studies/{name}/summary").status_code == 200
    reader.close()


def test_static_and_report_routes_refuse_paths_outside_their_folder(db, tmp_path):
    reports = tmp_path / "reports"
    (reports / "s").mkdir(parents=True)
    (reports / "s" / "index.html").write_text("<p>the report</p>")
    (tmp_path / "secret.txt").write_text("secret")
    reader = ResultStore(f"sqlite:///{db[0]}", read_only=True)
    with TestClient(make_app(reader, reports=reports)) as c:
        assert c.get("/static/dashboard.js").status_code == 200
        assert "/report/s/index.html" in c.get("/study/s").text
        assert c.get("/report/s/index.html").text == "<p>the report</p>"
        for bad in ("/static/..%2F..%2Fpyproject.toml", "/static/serve.py",
                    "/report/s/..%2F..%2Fsecret.txt", "/report/s/%2E%2E/%2E%2E/secret.txt",
                    "/report/..%2Fsecret.txt/x"):
            response = c.get(bad)
            assert response.status_code == 404 and "secret" not in response.text, bad
    reader.close()


def test_a_dashboard_session_leaves_the_database_byte_for_byte(tmp_path):
    path = tmp_path / "r.sqlite"
    writer, _ = _database(path)
    writer.close()  # no writer left: its log is folded in and removed
    before = path.read_bytes()
    assert {p.name for p in tmp_path.iterdir()} == {"r.sqlite"}
    reader = ResultStore(f"sqlite:///{path}", read_only=True)
    with TestClient(make_app(reader)) as c:
        cursor = c.get("/api/studies/s").json()["cursor"]
        for url in ("/", "/study/s", "/api/studies", "/api/studies/s/summary",
                    f"/api/jobs/{KEYS[0]}", "/compare?a=s&b=s"):
            assert c.get(url).status_code == 200, url
        assert c.get("/api/studies/s/updates", params={"after": cursor}).status_code == 200
    reader.close()
    assert path.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} == {"r.sqlite"}  # no -wal/-shm left


def test_serve_refuses_a_port_in_use_and_a_missing_or_foreign_database(tmp_path, cli,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    _database(tmp_path / "r.sqlite")[0].close()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        busy = cli("serve", "--db", "r.sqlite", "--port", port)
        assert busy.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.output
    missing = cli("serve", "--db", "none.sqlite", "--port", "0")
    assert missing.exit_code == 2 and "no such database" in missing.output
    assert not (tmp_path / "none.sqlite").exists()
    con = sqlite3.connect(tmp_path / "foreign.sqlite")
    con.execute("create table customers (id integer)")
    con.close()
    foreign = cli("serve", "--db", "foreign.sqlite", "--port", "0")
    assert foreign.exit_code == 2 and "not a cnnbench database" in foreign.output


def test_off_loopback_a_token_is_generated_printed_once_and_required(tmp_path):
    """`serve --host 0.0.0.0`: the token is made up and printed in the URL; requests
    without it get 401, with it 200; Ctrl-C stops the server."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from benchmark.serve import needs_token

    assert needs_token("0.0.0.0") and needs_token("192.168.1.5")
    assert not needs_token("127.0.0.1") and not needs_token("localhost")
    _database(tmp_path / "r.sqlite")[0].close()
    server = subprocess.Popen([sys.executable, "-m", "benchmark", "serve", "--db", "r.sqlite",
                               "--host", "0.0.0.0", "--port", "0"], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={k: v for k, v in os.environ.items() if k != "CNNBENCH_TOKEN"})
    try:
        lines = [server.stdout.readline(), server.stdout.readline()]
        url = lines[-1].split()[-1]
        assert url.startswith("http://0.0.0.0:") and "/?token=" in url, lines
        base, token = url.split("/?token=")
        local = base.replace("0.0.0.0", "127.0.0.1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(local + "/api/studies", timeout=10)
        assert refused.value.code == 401
        refused.value.close()  # its socket
        request = urllib.request.Request(local + "/api/studies",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200 and b'"name":"s"' in answer.read()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0
        rest = server.stdout.read()
        server.stdout.close()
    assert token not in rest and rest.strip() == "stopped", rest  # printed once


def test_the_summary_brought_up_to_date_equals_one_computed_afresh(db):
    """The dashboard's summary cache recomputes only the sections and jobs that new runs
    touch; after runs that finish a job, fail one and then retry it, it must equal a
    summary computed from nothing."""
    from benchmark import dashboard

    path, writer, me = db
    reader = ResultStore(f"sqlite:///{path}", read_only=True)
    cache = dashboard.SummaryCache()

    def same(a, b):
        import pandas as pd

        assert a["effects"] == b["effects"] and a["claims"] == b["claims"]
        key = ["section", "cell", "position", "epoch"]
        left, right = (x.sort_values(key).reset_index(drop=True) for x in (a["sums"], b["sums"]))
        pd.testing.assert_frame_equal(left, right, check_dtype=False, rtol=1e-9)
        assert len(left) and (left["n"] > 0).all()

    before = cache.get(reader, "s")
    writer.record(_result(KEYS[2], acc=91.0, cv=code_version()), me)  # the running job ends
    assert writer.claim(KEYS[3], me, code_version())
    writer.record(_result(KEYS[3], JobStatus.FAILED, cv=code_version()), me)
    updated = cache.get(reader, "s")
    same(updated, dashboard.SummaryCache().get(reader, "s"))
    assert updated["sums"]["n"].sum() > before["sums"]["n"].sum()  # KEYS[2]'s epochs came in
    assert writer.claim(KEYS[3], me, code_version(), retry_failed=True)
    writer.record(_result(KEYS[3], acc=99.0, cv=code_version()), me)  # the retry replaces it
    same(cache.get(reader, "s"), dashboard.SummaryCache().get(reader, "s"))
    con = sqlite3.connect(path)  # a finished job trained again: its new run replaces its points
    con.execute("update jobs set status = 'PENDING' where job_key = ?", (KEYS[0],))
    con.commit()
    con.close()
    assert writer.claim(KEYS[0], me, code_version())
    writer.record(_result(KEYS[0], acc=80.0, cv=code_version()), me)
    final = cache.get(reader, "s")
    same(final, dashboard.SummaryCache().get(reader, "s"))
    # each effect says what it decides on, and whether that is an accuracy in pp (the page
    # shows it to 2 decimals, another metric to 4)
    assert final["effects"] and all(
        e["metric"] == "test_accuracy (pp, higher is better)" and e["percent"] is True
        for e in final["effects"])
    reader.close()


def test_a_change_by_a_runner_whose_clock_lags_is_not_lost(client, db):
    """Runners on other machines stamp job changes with their own clocks: a change stamped
    two seconds before the newest one a reader has seen still reaches it."""
    from datetime import datetime, timedelta

    path, _, _ = db
    cursor = client.get("/api/studies/s").json()["cursor"]
    seen = datetime.fromisoformat(cursor.split(".", 2)[2])
    con = sqlite3.connect(path)
    con.execute("update jobs set status = 'RUNNING', runner = 'lagging', runner_host = 'far', "
                "lease_expires = ?, updated_at = ? where job_key = ?",
                (str(seen + timedelta(minutes=2)), str(seen - timedelta(seconds=2)), KEYS[3]))
    con.commit()
    con.close()
    update = client.get("/api/studies/s/updates", params={"after": cursor}).json()
    assert {j["status"] for j in update["jobs"] if j["key"] == KEYS[3]} == {"RUNNING"}, update
