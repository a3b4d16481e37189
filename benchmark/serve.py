"""`cnnbench serve`: a live, read-only dashboard over the result database.

Starlette (routing, responses, a test client) served by uvicorn: small, typed, well
kept, and it runs the synchronous store reads in its thread pool. Pages are static
shells; `web/dashboard.js` draws them from the JSON API (the same one users script
against) and polls `updates?after=CURSOR` every second, so each update carries only what
changed. Charts are SVG drawn by `web/chart.js`, shipped in the package: no CDN, works
offline.

Safe by default: it binds 127.0.0.1; on any other address every request needs the token
(`--token`, or one generated and printed once), as a `token` query parameter (which sets
a cookie for the page's own requests), a cookie, or an `Authorization: Bearer` header;
401 without it. Only GET and HEAD routes exist; the store is a reader's (never writes).
Every string from a study or the database reaches the page as text (escaped here, or
set with textContent there); the database URL is shown redacted; static files come from
a fixed list and reports from inside the reports folder only.
"""

from __future__ import annotations

import errno
import html
import json
import secrets
import socket
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from string import Template
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import dashboard
from .figures import slug
from .store import ResultStore

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
STATIC = {"dashboard.js": "text/javascript", "chart.js": "text/javascript",
          "dashboard.css": "text/css"}
COOKIE = "cnnbench_token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class ServeError(RuntimeError):
    """Bad serve options: exit 2 with the message."""


def needs_token(host: str) -> bool:
    return host not in LOCAL_HOSTS


class _Json(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, default=_default, allow_nan=False,
                          separators=(",", ":")).encode()


def _default(x):
    """Datetimes as ISO text. (json calls this only for types it cannot write: a NaN is a
    float and fails `allow_nan=False`, which is why `dashboard` turns NaN into null.)"""
    if isinstance(x, datetime):
        return x.isoformat()
    raise TypeError(f"not JSON: {type(x).__name__}")


class _Guard(BaseHTTPMiddleware):
    """The token check (when one is set) and the security headers on every answer."""

    def __init__(self, app, token: str | None):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next):
        given = request.query_params.get("token")
        if self.token is not None:
            header = request.headers.get("authorization", "")
            offered = [given, request.cookies.get(COOKIE),
                       header[7:] if header.lower().startswith("bearer ") else None]
            if not any(o and secrets.compare_digest(o, self.token) for o in offered):
                return Response("401: this dashboard needs its token (?token=...)",
                                status_code=401, media_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        if self.token is not None and given:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response


PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/chart.js" defer></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body data-page="$page" data-study="$study">
<header><a href="/" class="home">cnnbench</a> <span class="db">$db</span>
<span id="live" class="live">connecting...</span></header>
<main>
<h1>$title</h1>
$body
</main>
</body>
</html>
""")


def make_app(store: ResultStore, *, token: str | None = None,
             reports: str | Path = "reports") -> Starlette:
    """The dashboard over an open reader's `store`. `token`: required on every request
    when given. `reports`: the folder `cnnbench report` writes to, for the links."""
    if not store.read_only:
        raise ValueError("the dashboard needs a read-only store (ResultStore(read_only=True))")
    cache = dashboard.SummaryCache()
    reports = Path(reports).resolve()
    web = files("benchmark") / "web"

    def page(kind: str, title: str, body: str = "", study: str = "") -> HTMLResponse:
        return HTMLResponse(PAGE.substitute(
            title=html.escape(title), page=kind, study=html.escape(study, quote=True),
            db=html.escape(store.url_redacted), body=body))

    def report_link(name: str) -> str | None:
        index = reports / slug(name) / "index.html"  # what `cnnbench report` writes
        return f"/report/{quote(name, safe='')}/index.html" if index.is_file() else None

    def index(request: Request):
        return page("index", "Studies", '<div id="studies">loading...</div>'
                    '<form id="compare" action="/compare" method="get"><h2>Compare two '
                    'studies</h2><select name="a" id="compare-a"></select> against '
                    '<select name="b" id="compare-b"></select> <button>compare</button></form>')

    def study_page(request: Request):
        name = request.path_params["name"]
        if name not in store.study_names():
            return page("missing", f"No study {name!r}", "<p>Back to the "
                        '<a href="/">index</a>.</p>')
        link = report_link(name)
        report = (f'<p><a href="{html.escape(link, quote=True)}">static report</a></p>'
                  if link else "<p>No static report yet: <code>cnnbench report "
                  f"{html.escape(name)}</code>.</p>")
        body = (f'{report}<section id="summary"></section><section id="grid">loading...'
                '</section><section id="curves"></section><section id="effects"></section>'
                '<aside id="job" hidden></aside>')
        return page("study", name, body, study=name)

    def compare_page(request: Request):
        from . import compare as comparing
        from .provenance import code_version
        from .report import html_table

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        names = store.study_names()
        unknown = [n for n in (a, b) if n not in names]
        if unknown:
            return page("missing", "Compare", f"<p>No study {html.escape(repr(unknown[0]))}"
                        f" here (studies: {html.escape(', '.join(names) or 'none')}).</p>")
        code = code_version()
        title, parts = comparing.build(comparing.Side(store, a, code, f"A: {a}"),
                                       comparing.Side(store, b, code, f"B: {b}"))
        body = []
        for part in parts:  # the same parts as `cnnbench compare` (it has no figures)
            if part.kind == "h2":
                body.append(f"<h2>{html.escape(part.text)}</h2>")
            elif part.kind == "p":
                body.append(f"<p>{html.escape(part.text)}</p>")
            elif part.kind == "table":
                body.append(html_table(part.headers, part.rows))
            elif part.kind == "pre":
                body.append(f"<pre>{html.escape(part.text)}</pre>")
        return page("compare", title, "\n".join(body))

    def static(request: Request):
        name = request.path_params["file"]
        if name not in STATIC:  # a fixed list: no path ever reaches the file system
            return Response("not found", status_code=404, media_type="text/plain")
        return Response((web / name).read_bytes(), media_type=STATIC[name],
                        headers={"Cache-Control": "no-cache"})

    def report_file(request: Request):
        name, rest = request.path_params["name"], request.path_params["path"]
        folder = (reports / slug(name)).resolve()
        target = (folder / rest).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(target)

    def api_studies(request: Request):
        return _Json({"database": store.url_redacted, "studies": dashboard.studies(store)})

    def api_study(request: Request):
        data = dashboard.study(store, request.path_params["name"])
        if data is None:
            return _Json({"error": f"no study {request.path_params['name']!r}"}, 404)
        data["report"] = report_link(data["name"])
        return _Json(data)

    def api_summary(request: Request):
        name = request.path_params["name"]
        if name not in store.study_names():
            return _Json({"error": f"no study {name!r}"}, 404)
        return _Json(dashboard.summary(store, name, cache))

    def api_updates(request: Request):
        name = request.path_params["name"]
        if name not in store.study_names():
            return _Json({"error": f"no study {name!r}"}, 404)
        try:
            return _Json(dashboard.updates(store, name, request.query_params.get("after", "")))
        except ValueError:
            return _Json({"error": "after= must be a cursor this API returned"}, 400)

    def api_job(request: Request):
        data = dashboard.job(store, request.path_params["key"])
        if data is None:
            return _Json({"error": f"no job {request.path_params['key']!r}"}, 404)
        return _Json(data)

    routes = [  # a study name may hold "/": the routes with a suffix come first
        Route("/", index), Route("/study/{name:path}", study_page),
        Route("/compare", compare_page), Route("/static/{file}", static),
        Route("/report/{name}/{path:path}", report_file),
        Route("/api/studies", api_studies),
        Route("/api/studies/{name:path}/summary", api_summary),
        Route("/api/studies/{name:path}/updates", api_updates),
        Route("/api/studies/{name:path}", api_study), Route("/api/jobs/{key}", api_job),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token)])


def check_port(host: str, port: int) -> None:
    """ServeError when `port` on `host` cannot be bound (in use, or not an address here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:  # not an address: no port is to blame
            raise ServeError(f"cannot listen on {host}: not an address of this machine "
                             f"({exc.strerror}): pass --host 127.0.0.1, 0.0.0.0 or one of its "
                             "addresses") from None
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ServeError(f"cannot listen on {host}: not an address of this machine "
                                 f"({exc.strerror}): pass --host 127.0.0.1, 0.0.0.0 or one of "
                                 "its addresses") from None
            raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror}): another "
                             "program holds the port, pass another --port (or --port 0 for "
                             "a free one)") from None


def serve(store: ResultStore, host: str, port: int, token: str | None, reports: str | Path,
          announce) -> None:
    """Run the dashboard until interrupted; `announce(url)` hears where it listens."""
    import uvicorn

    app = make_app(store, token=token, reports=reports)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3)  # a browser's keep-alive: no wait
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(sockets=None):
        await original(sockets)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        shown = f"[{host}]" if ":" in host else host
        suffix = f"/?token={token}" if token else "/"
        announce(f"http://{shown}:{bound}{suffix}")

    server.startup = startup
    server.run()
