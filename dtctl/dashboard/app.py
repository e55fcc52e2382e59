"""The dashboard's web application (Starlette): pages, the event stream and the action endpoint.

Pages are rendered on the server (Jinja2); ``dashboard.js`` draws the charts and the timeline, asks for
confirmation, and refreshes a page's live region when the event stream says the hub changed. Requests
are served from a thread pool; each borrows a client from :class:`ClientPool` (a hub object is used by
one thread at a time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from dtctl import __version__
from dtctl.client import TaskHubClient
from dtctl.core.history import ALL_STATUSES
from dtctl.dashboard import actions, fmt, hub_views, instance_view
from dtctl.dashboard.live import LiveHub
from dtctl.dashboard.security import Guard
from dtctl.errors import DtctlError, InstanceNotFound, InvalidState, UsageError
from dtctl.hub import open_hub, redact


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardConfig:
    hub: str  # a path or URL; it may hold a password, so it is never rendered (redact() is)
    host: str = "127.0.0.1"
    port: int = 8233
    allow_actions: bool = False
    window_seconds: float = 60.0
    poll_seconds: float = 5.0
    limits: tuple[int, int] = (0, 0)  # per-worker limits for the scale recommendation (0: defaults)
    synchronous: str = "full"


class ClientPool:
    """Clients of one hub lent to request threads, one thread at a time each."""

    def __init__(self, location: str, synchronous: str, keep: int = 8) -> None:
        self._location = location
        self._synchronous = synchronous
        self._idle: queue.LifoQueue[TaskHubClient] = queue.LifoQueue(maxsize=keep)

    def open(self) -> TaskHubClient:
        return TaskHubClient(open_hub(self._location, synchronous=self._synchronous))

    @contextlib.contextmanager
    def borrow(self) -> Iterator[TaskHubClient]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self.open()
        try:
            yield client
        except BaseException:
            client.close()  # a failed read may leave the connection in any state: do not lend it again
            raise
        try:
            self._idle.put_nowait(client)
        except queue.Full:
            client.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class HostCheck:
    """Refuse requests whose Host header does not name this server (DNS rebinding); add safe headers."""

    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (
            b"content-security-policy",
            b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    )

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.guard.host_allowed(host):
            await Response("unknown Host header", status_code=400, media_type="text/plain")(
                scope, receive, send
            )
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Dashboard:
    """The routes, bound to one hub and one configuration."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.pool = ClientPool(config.hub, config.synchronous)
        self.guard = Guard(config.host, config.port)
        self.live = LiveHub(self.pool.borrow, config.poll_seconds)
        self.env = Environment(
            loader=PackageLoader("dtctl.dashboard", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            clock=fmt.clock, duration=fmt.duration, iso=fmt.iso, short=fmt.short, ms=fmt.ms
        )
        with self.pool.borrow() as client:
            self.hub_shown = redact(client.hub.url)
            self.can_inspect = hub_views.inspector(client) is not None
            self.supported = [a.key for a in actions.supported(client)]
        self.limits = _limits(config.limits)

    # --- plumbing -----------------------------------------------------------------------------------

    def startup(self) -> None:
        client = self.pool.open()
        try:
            self.live.start(client.hub)
        except BaseException:
            client.close()
            raise
        self._wake_client = client

    def shutdown(self) -> None:
        self.live.stop()
        self._wake_client.close()
        self.pool.close()

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        template = self.env.get_template(name)
        values = {
            "hub": self.hub_shown,
            "version": __version__,
            "allow_actions": self.config.allow_actions,
            "csrf": self.guard.token if self.config.allow_actions else "",
            "live_version": self.live.version,
            "wake_driven": self.live.wake_driven,
            "poll_ms": int(self.config.poll_seconds * 1000),
            "path": request.url.path,
            **context,
        }
        if request.headers.get("x-dashboard-fragment") and "live" in template.blocks:
            body = "".join(template.blocks["live"](template.new_context(values)))
        else:
            body = template.render(values)
        return HTMLResponse(body, status_code=status_code, headers={"cache-control": "no-store"})

    def error_page(self, request: Request, error: DtctlError) -> Response:
        code = _http_status(error)
        if _wants_json(request):
            return JSONResponse({"error": error.message, "hint": error.hint}, status_code=code)
        return self.render(request, "error.html", code, message=error.message, hint=error.hint)

    # --- pages --------------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        with self.pool.borrow() as client:
            view = hub_views.overview(client, self.config.window_seconds, self.limits)
        samples = [dataclasses.asdict(s) for s in self.live.samples()]
        return self.render(
            request,
            "overview.html",
            view=view,
            counts=hub_views.counts_line(view) if view else None,
            samples_json=_script_json(samples),
            window=self.config.window_seconds,
        )

    def instances(self, request: Request) -> Response:
        try:
            filters = hub_views.parse_filters(request.query_params, request.query_params.getlist)
            with self.pool.borrow() as client:
                page = hub_views.list_page(client, filters)
                now = client.hub.now()
        except DtctlError as exc:
            return self.error_page(request, exc)
        fields = hub_views.query_fields()
        return self.render(
            request,
            "instances.html",
            page=page,
            filters=filters,
            now=now,
            statuses=ALL_STATUSES,
            extra_filters=hub_views.extra_filters(fields),
            extra_values=dict(filters.extra),
            next_query=filters.query_string(cursor=page.next_cursor) if page.next_cursor else None,
            first_query=filters.query_string(cursor=None) if filters.cursor else None,
            page_sizes=hub_views.PAGE_SIZES,
        )

    def instance(self, request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        execution = request.query_params.get("execution") or None
        try:
            with self.pool.borrow() as client:
                page = instance_view.instance_page(client, instance_id, execution)
                offered = actions.offered(client, page.state.status) if page.current else []
        except DtctlError as exc:
            return self.error_page(request, exc)
        return self.render(
            request,
            "instance.html",
            page=page,
            s=page.state,
            actions=offered if self.config.allow_actions else [],
            actions_hidden=bool(offered) and not self.config.allow_actions,
            timeline_json=_script_json(page.timeline),
        )

    def workers(self, request: Request) -> Response:
        with self.pool.borrow() as client:
            health, now = hub_views.workers(client)
        return self.render(request, "workers.html", workers=health, now=now)

    async def events(self, request: Request) -> Response:
        try:
            since = int(request.query_params.get("since") or self.live.version)
        except ValueError:
            since = self.live.version
        return StreamingResponse(
            self.live.stream(since),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def action(self, request: Request) -> Response:
        if not self.config.allow_actions:
            return _refuse(request, "actions are off: start the dashboard with --allow-actions")
        if (
            not self.guard.origin_allowed(
                request.headers.get("origin"), request.headers.get("referer"), request.headers.get("host")
            )
            or request.headers.get("sec-fetch-site") == "cross-site"
        ):
            return _refuse(request, "cross-site request refused")
        values = await _form(request)
        if values is None:
            return _refuse(request, "send the action as an urlencoded form of at most 1 MiB")
        if not self.guard.token_ok(values.get("csrf")):
            return _refuse(request, "missing or wrong CSRF token: reload the page")
        key = request.path_params["key"]
        instance_id = values.get("instance_id", "")
        if values.get("confirmed") != "1" and key in actions.BY_KEY:
            # Not confirmed yet (a browser without JavaScript): ask on a page of its own first.
            return self.render(
                request, "confirm.html", action=actions.BY_KEY[key], instance_id=instance_id, values=values
            )
        from starlette.concurrency import run_in_threadpool

        try:
            text = await run_in_threadpool(self._perform, key, instance_id, values)
        except DtctlError as exc:
            return self.error_page(request, exc)
        self.live.poke()
        target = "/instances" if key == "purge" else f"/instances/{_quote(instance_id)}"
        if _wants_json(request):
            return JSONResponse({"ok": True, "message": text, "redirect": target if key == "purge" else None})
        return RedirectResponse(target, status_code=303)

    def _perform(self, key: str, instance_id: str, values: dict[str, str]) -> str:
        if not instance_id:
            raise UsageError("which instance? (instance_id is missing)")
        with self.pool.borrow() as client:
            return actions.perform(client, key, instance_id, values)


MAX_FORM = 1 << 20  # bytes of an action's form (event data included)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form the action pages send (no multipart: nothing here takes files)."""
    from urllib.parse import parse_qsl

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can close it early."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _quote(instance_id: str) -> str:
    from urllib.parse import quote

    return quote(instance_id, safe="")


def _limits(limits: tuple[int, int]) -> tuple[int, int]:
    from dtctl.runtime.config import default_max_activities, default_max_orchestrations

    return (limits[0] or default_max_orchestrations(), limits[1] or default_max_activities())


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _refuse(request: Request, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=403)
    return Response(message, status_code=403, media_type="text/plain")


def _http_status(error: DtctlError) -> int:
    if isinstance(error, InstanceNotFound):
        return 404
    if isinstance(error, InvalidState):
        return 409
    if isinstance(error, UsageError):
        return 400
    return 500


def create_app(config: DashboardConfig) -> tuple[ASGIApp, Dashboard]:
    dashboard = Dashboard(config)
    routes = [
        Route("/", dashboard.overview),
        Route("/instances", dashboard.instances),
        Route("/instances/{instance_id:path}", dashboard.instance),
        Route("/workers", dashboard.workers),
        Route("/events", dashboard.events),
        Route("/actions/{key}", dashboard.action, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("dtctl.dashboard", "static")]), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        dashboard.startup()
        try:
            yield
        finally:
            dashboard.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    return HostCheck(app, dashboard.guard), dashboard
