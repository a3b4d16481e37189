"""The dashboard in a real headless Chromium while a real `cnnbench run` trains: a new
epoch and the job turning COMPLETE appear on the open study page without a reload.
Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import os
import signal
import subprocess
import sys
import threading

from test_report_browser import browser, pytestmark  # noqa: F401 (the fixture, the marks)

from benchmark.store import ResultStore


def _lines(proc, seen: list[str], events: dict[str, threading.Event]) -> threading.Thread:
    """Read `proc`'s output into `seen`, setting events[text] when a line holds text."""
    def read():
        for line in proc.stdout:
            seen.append(line)
            for text, event in events.items():
                if text in line:
                    event.set()
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait(event: threading.Event, what: str, output: list[str]) -> None:
    assert event.wait(120), f"never saw {what!r}:\n{''.join(output)}"


def test_the_study_page_follows_a_running_grid_live(workdir, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ResultStore(f"sqlite:///{workdir / 'r.sqlite'}").close()  # an empty cnnbench database
    gates = workdir / "gate1", workdir / "gate2"
    env = {**os.environ, "CNNBENCH_TEST_GATE": str(gates[0]),
           "CNNBENCH_TEST_GATE2": str(gates[1]), "CNNBENCH_EPOCH_LINES_AFTER": "0"}
    serve_out, run_out = [], []
    listening = threading.Event()
    server = subprocess.Popen([sys.executable, "-m", "benchmark", "serve", "--db", "r.sqlite",
                               "--port", "0"], cwd=workdir, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runner, readers = None, {}
    try:
        readers[server] = _lines(server, serve_out, {"dashboard at": listening})
        _wait(listening, "dashboard at", serve_out)
        url = next(x for x in serve_out if "dashboard at" in x).split()[-1].rstrip("/")
        epoch1 = threading.Event()
        runner = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "gated.py",
                                   "--jobs", "1", "--db", "r.sqlite"], cwd=workdir, env=env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        readers[runner] = _lines(runner, run_out, {"G/gated seed 0: epoch 1/3": epoch1})
        _wait(epoch1, "epoch 1/3", run_out)  # in the database before the runner prints it

        browser.get(f"{url}/study/gated")
        wait = WebDriverWait(browser, 60, poll_frequency=0.1)
        cell = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "table.matrix td.run"))
        wait.until(lambda d: cell.get_attribute("data-status") == "RUNNING"
                   and cell.get_attribute("data-epochs") == "1")
        browser.execute_script("window.__sameDocument = true;")  # gone if the page reloads

        gates[0].touch()  # epoch 2 runs, then the job waits at the second gate
        wait.until(lambda d: cell.get_attribute("data-epochs") == "2")
        assert cell.get_attribute("data-status") == "RUNNING"
        gates[1].touch()  # the job finishes
        wait.until(lambda d: cell.get_attribute("data-status") == "COMPLETE")
        wait.until(lambda d: len(d.find_elements(  # the curve redrawn with epochs 1-3
            By.CSS_SELECTOR, "#curves .chart svg circle")) == 3)
        assert browser.execute_script("return window.__sameDocument === true;")
        assert "G" in browser.find_element(By.ID, "grid").text
        assert "ok" in browser.find_element(By.ID, "live").get_attribute("class")

        browser.get(url + "/")  # the index lists it with its job done
        wait.until(lambda d: "COMPLETE 1" in d.find_element(By.ID, "studies").text)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        assert runner.wait(120) == 0, "".join(run_out)
    finally:
        for gate in gates:
            gate.touch()
        for proc in (runner, server):
            if proc is not None:
                if proc.poll() is None:  # Ctrl-C: a runner stops its workers, hands jobs back
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
                readers[proc].join(30)  # at the end of its output
                if not readers[proc].is_alive():  # else an orphan holds the pipe: leave it
                    proc.stdout.close()
