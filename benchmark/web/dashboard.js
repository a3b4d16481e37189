/* cnnbench dashboard: draws the pages from the JSON API and keeps them live by polling
   /api/studies/<name>/updates?after=<cursor> every second (only what changed comes back).
   Every string from the database goes in with textContent, never as markup. */
(function () {
  "use strict";
  const POLL_MS = 1000;
  const body = document.body;
  const live = document.getElementById("live");

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" || typeof c === "number"
        ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function table(headers, rows) {
    return h("table", {}, h("thead", {}, h("tr", {}, ...headers.map(x => h("th", {}, x)))),
             h("tbody", {}, ...rows.map(r => h("tr", {}, ...r.map(c =>
               c instanceof Node ? h("td", {}, c) : h("td", {}, c === null ? "" : String(c)))))));
  }

  async function getJSON(url) {
    const response = await fetch(url, {credentials: "same-origin"});
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function setLive(ok, text) {
    live.className = "live " + (ok ? "ok" : "down");
    live.textContent = text;
  }

  const fmt = (x, d = 2) => (x === null || x === undefined) ? "" : Number(x).toFixed(d);
  // an accuracy's difference to 0.01 pp; another metric's (its own unit) to 4 decimals
  const digits = e => e.percent ? 2 : 4;
  const signed = (x, d = 2) => (x === null || x === undefined) ? "" :
    (x >= 0 ? "+" : "") + Number(x).toFixed(d);
  const enc = encodeURIComponent;

  /* ------------------------------------------------------------------ index */

  async function indexPage() {
    const box = document.getElementById("studies");
    async function draw() {
      const data = await getJSON("/api/studies");
      const rows = data.studies.map(s => [
        h("a", {href: "/study/" + enc(s.name)}, s.name),
        s.description || "", s.cell_runs,
        h("span", {}, ...Object.entries(s.jobs_by_status).map(([k, n]) =>
          h("span", {class: "badge " + k}, `${k} ${n}`))),
        s.last_activity ? s.last_activity.replace("T", " ").slice(0, 19) : "",
        s.code_versions.join(", ")]);
      box.replaceChildren(data.studies.length ? table(
        ["study", "description", "cell runs", "jobs by status", "last activity (UTC)",
         "code versions"], rows) : h("p", {}, "No studies in this database yet."));
      for (const id of ["compare-a", "compare-b"]) {
        const select = document.getElementById(id);
        const chosen = select.value;
        select.replaceChildren(...data.studies.map(s => h("option", {value: s.name}, s.name)));
        if (chosen) select.value = chosen;
      }
      setLive(true, "updated " + new Date().toLocaleTimeString());
    }
    const tick = async () => {
      try { await draw(); } catch (e) { setLive(false, "database unreachable: " + e.message); }
      setTimeout(tick, 5 * POLL_MS);
    };
    tick();
  }

  /* ------------------------------------------------------------------ study */

  async function studyPage(name) {
    const base = "/api/studies/" + enc(name);
    const data = await getJSON(base);
    const jobs = new Map();  // cell-run id -> job entry
    const cellsOf = new Map();  // job key -> [cell-run ids]
    const id = j => `${j.section}\u0000${j.cell}\u0000${j.seed}`;
    for (const j of data.jobs) {
      jobs.set(id(j), j);
      if (!cellsOf.has(j.key)) cellsOf.set(j.key, []);
      cellsOf.get(j.key).push(id(j));
    }
    let cursor = data.cursor;
    let open = null;  // the key of the job whose panel is open

    const summaryBox = document.getElementById("summary");
    const grid = document.getElementById("grid");
    const curves = document.getElementById("curves");
    const effects = document.getElementById("effects");
    const panel = document.getElementById("job");
    const tds = new Map();

    function label(j) {
      if (j.status === "RUNNING") return `${j.epochs_done}/${j.epochs}`;
      if (j.test_accuracy !== null) return fmt(j.test_accuracy);
      return j.status.slice(0, 4).toLowerCase();
    }

    function paint(td, j) {
      td.className = "run " + j.status + (j.runs > 1 || j.failures ? " retried" : "");
      td.textContent = label(j);
      td.title = `${j.section} / ${j.cell} / seed ${j.seed}: ${j.status}` +
        (j.status === "RUNNING" ? `, epoch ${j.epochs_done} of ${j.epochs}` : "") +
        `; ${j.runs} run(s), ${j.failures} failed` + (j.dead_runner ? "; its runner died" : "");
      td.dataset.status = j.status;
      td.dataset.epochs = j.epochs_done;
    }

    function drawSummary() {
      const counts = {};
      for (const j of jobs.values()) counts[j.status] = (counts[j.status] || 0) + 1;
      summaryBox.replaceChildren(
        data.description ? h("p", {}, data.description) : null,
        h("p", {id: "counts"}, ...Object.entries(counts).map(([k, n]) =>
          h("span", {class: "badge " + k}, `${k} ${n}`))),
        h("p", {}, `code version ${data.code_version}` +
          (data.margin_pp ? `; smallest effect of interest \u00b1${data.margin_pp} pp` : "") +
          (data.sequential ? "; a sequential design (--until-decided)" : "")));
    }

    function drawGrid() {
      const parts = [h("h2", {}, "Grid")];
      for (const sec of data.sections) {
        const seeds = [...new Set([...jobs.values()].filter(j => j.section === sec.name)
          .map(j => j.seed))].sort((a, b) => a - b);  // the seeds this section holds
        const head = h("tr", {}, h("th", {}, "cell"), ...seeds.map(s => h("th", {}, `seed ${s}`)));
        const rows = sec.cells.map(cell => h("tr", {}, h("th", {}, cell), ...seeds.map(seed => {
          const j = jobs.get(`${sec.name}\u0000${cell}\u0000${seed}`);
          if (!j) return h("td", {});
          const td = h("td", {"data-key": j.key, onclick: () => showJob(j.key)});
          paint(td, j);
          tds.set(id(j), td);
          return td;
        })));
        parts.push(h("h3", {}, `${sec.name}: ${sec.title || ""}`),
                   h("table", {class: "matrix", "data-section": sec.name},
                     h("thead", {}, head), h("tbody", {}, ...rows)));
      }
      grid.replaceChildren(...parts);
    }

    async function drawStats() {
      const s = await getJSON(base + "/summary");
      const charts = [h("h2", {}, "Learning curves (test accuracy, mean and 95% interval across seeds)")];
      const box = h("div", {class: "charts"});
      for (const sec of data.sections) {
        const series = (s.curves[sec.name] || []).map(c => ({
          name: c.cell, points: c.points.map(p => ({x: p.epoch, y: p.mean, low: p.low, high: p.high}))}));
        if (!series.length) continue;
        box.appendChild(h("div", {class: "chart", "data-section": sec.name},
          h("h3", {}, sec.name),
          window.cnnbenchChart.lines(series, {xLabel: "epoch", yLabel: "test accuracy (%)"})));
      }
      charts.push(box.childNodes.length ? box : h("p", {}, "No finished epochs yet."));
      curves.replaceChildren(...charts);
      const verdict = v => h("span", {class: "verdict-" + String(v).split(/[ :]/)[0]}, v);
      const parts = [h("h2", {}, "Effects")];
      parts.push(s.effects.length ? table(
        ["section", "cell", "vs", "decided on", "diff", "95% CI", "p", "level (family)", "method",
         "verdict"],
        s.effects.map(e => [e.section, e.cell, e.baseline, e.metric, signed(e.diff, digits(e)),
          e.ci_low === null ? "" :
            `[${signed(e.ci_low, digits(e))}, ${signed(e.ci_high, digits(e))}]`,
          fmt(e.p, 4), fmt(e.level, 4), e.method, verdict(e.verdict)]))
        : h("p", {}, "No current results yet."));
      if (s.claims.length) {
        parts.push(h("h2", {}, "Claims"), table(["claim", "section", "verdict", "evidence"],
          s.claims.map(c => [c.claim, c.section, verdict(c.verdict), c.evidence])));
      }
      effects.replaceChildren(...parts);
    }

    async function showJob(key) {
      open = key;
      const j = await getJSON("/api/jobs/" + enc(key));
      const curve = (j.live_epochs.length ? j.live_epochs : j.epochs)
        .filter(e => e.test_accuracy !== null).map(e => ({x: e.epoch, y: e.test_accuracy}));
      const runs = j.runs.map(r => [r.run_id, r.status, fmt(r.test_accuracy), r.epochs_done,
        fmt(r.train_seconds, 1), r.device || "",
        (r.host || "") + (r.slurm_job_id ? ` (Slurm job ${r.slurm_job_id})` : ""),
        r.code_version || "",
        [r.python_version && "python " + r.python_version, r.torch_version && "torch " +
         r.torch_version, r.cuda_version && "cuda " + r.cuda_version].filter(Boolean).join(", "),
        r.finished_at ? r.finished_at.replace("T", " ").slice(0, 19) : ""]);
      const errors = j.runs.filter(r => r.error).map(r => h("pre", {}, `run ${r.run_id}:\n${r.error}`));
      panel.replaceChildren(
        h("button", {class: "close", onclick: () => { panel.hidden = true; open = null; }}, "close"),
        h("h2", {}, "Job " + key.slice(0, 12)),
        h("p", {}, `${j.status}, ${j.attempts} attempt(s)` +
          (j.runner_host ? `, held by ${j.runner_host}` : "")),
        h("p", {}, "cells: " + j.cells.map(c => `${c.study} / ${c.section} / ${c.cell}`).join("; ")),
        curve.length ? window.cnnbenchChart.lines([{name: j.live_epochs.length ? "running" : "latest run",
          points: curve}], {width: 420, height: 200, xLabel: "epoch", yLabel: "test acc (%)"}) : null,
        h("h3", {}, "Runs"), runs.length ? table(["run", "status", "test acc", "epochs",
          "train s", "device", "host", "code", "versions", "finished (UTC)"], runs)
          : h("p", {}, "none yet"),
        ...errors,
        h("h3", {}, "Config"), table(["field", "value"],
          Object.entries(j.config).map(([k, v]) => [k, v === null ? "" : String(v)])));
      panel.hidden = false;
    }

    drawSummary();
    drawGrid();
    await drawStats();
    setLive(true, "live");

    let statsDue = false;
    async function poll() {
      try {
        const u = await getJSON(`${base}/updates?after=${enc(cursor)}`);
        cursor = u.cursor;
        for (const j of u.jobs) {
          const key = id(j);
          const before = jobs.get(key);
          jobs.set(key, j);
          const td = tds.get(key);
          if (td && (!before || before.status !== j.status || before.epochs_done !== j.epochs_done)) {
            paint(td, j);
            td.classList.add("changed");
          }
        }
        for (const e of u.epochs) {
          for (const key of cellsOf.get(e.key) || []) {
            const j = jobs.get(key);
            if (j && j.status === "RUNNING" && e.epoch > j.epochs_done) {
              j.epochs_done = e.epoch;
              paint(tds.get(key), j);
            }
          }
        }
        if (u.jobs.length) drawSummary();
        if (u.summary_changed) statsDue = true;
        if (statsDue) { statsDue = false; await drawStats(); }
        if (open && (u.jobs.some(j => j.key === open) || u.epochs.some(e => e.key === open))) {
          await showJob(open);
        }
        setLive(true, "updated " + new Date().toLocaleTimeString());
      } catch (e) {
        setLive(false, "database unreachable: " + e.message);
      }
      setTimeout(poll, POLL_MS);
    }
    setTimeout(poll, POLL_MS);
  }

  const kind = body.dataset.page;
  if (kind === "index") indexPage();
  else if (kind === "study") studyPage(body.dataset.study).catch(e => setLive(false, e.message));
  else setLive(true, "");
})();
