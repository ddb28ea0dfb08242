"""The sandbox's HTTP plumbing: routing, request counting and fault injection.

Each fake service (Zendesk, Linear, ...) is a :class:`FakeService` with routes;
:class:`Sandbox` serves each one on its own loopback port with a threaded
``http.server``. Faults are injected per endpoint at a set rate or for the
next N requests; every request is counted per endpoint so benchmarks and
tests can say exactly what syncd cost.
"""

from __future__ import annotations

import collections
import json
import random
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, TypeVar, overload
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from syncd.sandbox.seed import SeedResult
    from syncd.sandbox.world import ServiceWorld

FAULT_KINDS = ("429", "500", "502", "503", "timeout", "reset", "truncate", "non_json", "wrong_shape", "latency")


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    @overload
    def arg(self, name: str) -> str | None: ...
    @overload
    def arg(self, name: str, default: str) -> str: ...
    @overload
    def arg(self, name: str, default: str | None) -> str | None: ...
    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class HttpFault(Exception):
    """Raised by a route handler to answer with an error status and body."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.response = FakeResponse(status, body, headers or {})


@dataclass
class FaultRule:
    """Inject ``kind`` into requests whose endpoint matches ``endpoint``.

    ``endpoint`` is a regex matched against "METHOD /route/pattern" (e.g.
    ``"PUT /api/v2/tickets/{id}"`` or ``"POST /graphql commentCreate"``).
    ``rate`` is a probability per request; ``count`` caps how many times the
    rule fires (None: unlimited).
    """

    kind: str
    endpoint: str = ".*"
    rate: float = 1.0
    count: int | None = None
    retry_after: float = 1.0
    delay: float = 2.0  # seconds, for timeout and latency
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {', '.join(FAULT_KINDS)}")
        self._re = re.compile(self.endpoint)

    def matches(self, endpoint: str, rng: random.Random) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if not self._re.search(endpoint):
            return False
        return rng.random() < self.rate


Route = tuple[str, re.Pattern[str], str, Callable[[FakeRequest], FakeResponse]]


class WebhookSigner(Protocol):
    """Signs a webhook the way a service does (a connector's ``webhook``, connectors.base.WebhookSignature)."""

    def sign(self, payload: dict[str, Any], secret: bytes, now: datetime) -> tuple[bytes, dict[str, str]]: ...


class FakeService:
    """Base for a fake API. Subclasses register routes in ``__init__``."""

    name = "service"
    # What the sandbox (syncd.sandbox.runner) needs to serve this fake and point
    # syncd's connector at it: the port ``syncd sandbox`` listens on unless told
    # otherwise, and the connector's secret fields with the fixed values the fake
    # accepts (given to syncd in the environment).
    default_port: ClassVar[int] = 0
    secrets: ClassVar[dict[str, str]] = {}
    # Its part of the sandbox world (seed data, the people's acts, the demo's
    # view), as an import path "package.module:Class" naming a
    # syncd.sandbox.world.ServiceWorld; empty: the fake is served unseeded.
    world: ClassVar[str] = ""
    # Endpoints (regexes over the endpoint name) sent with a method other than GET that
    # only read (a search by POST): they send no webhook (see send_webhooks).
    reads_by_post: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def for_sandbox(cls, *, clock: Callable[[], datetime] | None = None, seed: int = 0) -> FakeService:
        """The fake as the sandbox serves it; ``clock`` gives datetimes (to back-date seeded history)."""
        return cls(clock=clock, seed=seed)  # type: ignore[call-arg]

    def connector_config(self) -> list[str]:
        """The connector table's TOML lines for this fake beyond kind and url (no secrets)."""
        return []

    def playground_config(self) -> list[str]:
        """Further lines the playground (demo, tests) adds, e.g. to skip politeness delays."""
        return []

    def describe(self, url: str) -> str:
        """Where a person sends requests and how they authenticate, for ``syncd sandbox``."""
        return url

    def __init__(self, *, seed: int = 0):
        self.routes: list[Route] = []
        self.lock = threading.RLock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults: list[FaultRule] = []
        self.rng = random.Random(seed)
        self.listeners: list[Callable[[str, FakeRequest, FakeResponse], None]] = []
        self.base_url = ""  # set by Sandbox.start
        self.malformed: set[str] = set()  # record ids sent in the wrong shape (see malform)
        # Where the fake sends its signed webhooks (see send_webhooks): none by default.
        self.webhook: tuple[str, bytes, WebhookSigner] | None = None
        self._webhook_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.webhooks_sent = 0

    # -- webhooks ----------------------------------------------------------------

    def send_webhooks(
        self,
        url: str | None,
        secret: bytes = b"",
        signer: WebhookSigner | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """From now on, after each request that changes something, POST a webhook signed
        the service's way (``signer``: its connector's ``webhook``) to ``url``, as the
        service would, stamped with ``clock`` (default: the machine's); None stops.
        Sent from a thread of its own."""
        self.webhook = None if url is None or signer is None else (url, secret, signer)
        self._webhook_clock = clock or (lambda: datetime.now(timezone.utc))

    def is_change(self, endpoint: str, request: FakeRequest) -> bool:
        """Whether a request that went through changed something (a webhook follows)."""
        return request.method != "GET" and not any(re.search(p, endpoint) for p in self.reads_by_post)

    def _ring(self, endpoint: str) -> None:
        target = self.webhook
        if target is None:
            return
        url, secret, signer = target
        body, headers = signer.sign({"event": "changed", "endpoint": endpoint}, secret, self._webhook_clock())

        def post() -> None:
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                urllib.request.urlopen(request, timeout=5).close()
            except OSError:
                pass  # a webhook lost: syncd polls on its interval anyway
            with self.lock:
                self.webhooks_sent += 1

        threading.Thread(target=post, name=f"{self.name}-webhook", daemon=True).start()

    # -- routing ---------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Callable[[FakeRequest], FakeResponse]) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self.routes.append((method.upper(), re.compile(regex), pattern, handler))

    def normalize_path(self, path: str) -> str:
        """The path as routes see it (e.g. Zendesk accepts an optional ``.json``)."""
        return path

    def endpoint_name(self, request: FakeRequest, pattern: str) -> str:
        """How a request is counted; GraphQL fakes add the operation."""
        return f"{request.method} {pattern}"

    def dispatch(self, request: FakeRequest) -> tuple[str, FakeResponse]:
        for method, regex, pattern, handler in self.routes:
            m = regex.match(request.path)
            if m and method == request.method:
                request.params = m.groupdict()
                endpoint = self.endpoint_name(request, pattern)
                return endpoint, self._call(handler, request)
        return f"{request.method} (unknown)", FakeResponse(404, {"error": "NotFound", "path": request.path})

    def _call(self, handler: Callable[[FakeRequest], FakeResponse], request: FakeRequest) -> FakeResponse:
        try:
            with self.lock:
                return handler(request)
        except HttpFault as fault:
            return fault.response

    # -- faults ----------------------------------------------------------------

    def inject(
        self,
        kind: str,
        endpoint: str = ".*",
        *,
        rate: float = 1.0,
        count: int | None = None,
        retry_after: float = 1.0,
        delay: float = 2.0,
    ) -> FaultRule:
        rule = FaultRule(kind, endpoint, rate, count, retry_after, delay)
        with self.lock:
            self.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def pick_fault(self, endpoint: str) -> FaultRule | None:
        with self.lock:
            for rule in self.faults:
                if rule.matches(endpoint, self.rng):
                    rule.fired += 1
                    return rule
        return None

    def wrong_shape(self, body: Any) -> Any:
        """Valid JSON of the wrong shape: the same keys holding the wrong types."""
        if isinstance(body, dict):
            return {k: ("?" if isinstance(v, (dict, list)) else [v]) for k, v in body.items()}
        return {"unexpected": body}

    def malform(self, record_id: str) -> None:
        """Send this record (by stable id) as valid JSON of the wrong shape from now on,
        wherever the fake lists or shows it: its id kept, every other field the wrong type."""
        with self.lock:
            self.malformed.add(str(record_id))

    def shaped(self, record: Any) -> Any:
        """``record`` as sent: in the wrong shape if :meth:`malform` named it."""
        if isinstance(record, dict) and str(record.get("id")) in self.malformed:
            return {**self.wrong_shape(record), "id": record["id"]}
        return record

    # -- the connector exam (connectors/testing.py) ---------------------------------
    # Each fake says, in its own service's words, how the conformance suite reaches
    # it: the config that reads it, a record to create, an id that names nothing.

    def exam_config(self) -> dict[str, Any]:
        """Config fields (beyond kind and url) with which the connector of this kind
        reads this fake with valid credentials, following where exam_create writes."""
        raise NotImplementedError(f"{type(self).__name__} does not take the connector exam")

    def exam_bad_credentials(self) -> dict[str, Any]:
        """Config fields to override in exam_config so that the fake answers 401."""
        raise NotImplementedError(f"{type(self).__name__} does not take the connector exam")

    def exam_create(self, title: str) -> str:
        """Create a record (ticket, issue) as a person would; its stable id as the connector reports it."""
        raise NotImplementedError(f"{type(self).__name__} does not take the connector exam")

    def exam_missing(self) -> str:
        """An id in this service's form that names no record."""
        raise NotImplementedError(f"{type(self).__name__} does not take the connector exam")

    def exam_delete(self, record_id: str) -> None:
        """Delete a record for good, as a person can (trackers)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete records")

    # -- accounting --------------------------------------------------------------

    def total_requests(self) -> int:
        return sum(self.counts.values())

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()


def _make_handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle's
        # algorithm and delayed ACKs add 40 ms to every keep-alive request.
        disable_nagle_algorithm = True
        server_version = f"syncd-sandbox-{service.name}"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = FakeRequest(
                method=self.command,
                path=service.normalize_path(parts.path),
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            # Resolve the endpoint name first so faults can target it.
            endpoint = "?"
            for method, regex, pattern, _ in service.routes:
                if method == request.method and regex.match(request.path):
                    endpoint = service.endpoint_name(request, pattern)
                    break
            with service.lock:
                service.counts[endpoint] += 1
            fault = service.pick_fault(endpoint)
            if fault and fault.kind in ("429", "500", "502", "503"):
                status = int(fault.kind)
                headers = {"Retry-After": str(int(fault.retry_after))} if status in (429, 503) else {}
                return self._send(FakeResponse(status, {"error": f"injected {status}"}, headers))
            if fault and fault.kind == "reset":
                return self._reset()
            if fault and fault.kind == "latency":
                time.sleep(fault.delay)
            _, response = service.dispatch(request)
            for listener in list(service.listeners):
                listener(endpoint, request, response)
            if service.webhook is not None and response.status < 300 and service.is_change(endpoint, request):
                service._ring(endpoint)
            if fault and fault.kind == "timeout":
                time.sleep(fault.delay)  # the write happened; the client gives up waiting
                return self._reset()
            if fault and fault.kind == "truncate":
                data = response.encode()
                return self._send(response, data[: max(1, len(data) // 2)], declared=len(data))
            if fault and fault.kind == "non_json":
                return self._send(FakeResponse(response.status, b"<html>Bad gateway</html>", response.headers))
            if fault and fault.kind == "wrong_shape":
                return self._send(FakeResponse(response.status, service.wrong_shape(response.body), response.headers))
            self._send(response)

        def _send(self, response: FakeResponse, data: bytes | None = None, declared: int | None = None) -> None:
            data = response.encode() if data is None else data
            self.send_response(response.status)
            headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(declared if declared is not None else len(data)))
            if declared is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if data:
                self.wfile.write(data)
            if declared is not None:
                self.close_connection = True

        def _reset(self) -> None:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


_Fake = TypeVar("_Fake", bound=FakeService)


class Sandbox:
    """Serves fake services on loopback ports, each in its own thread."""

    def __init__(self, services: list[FakeService], host: str = "127.0.0.1"):
        self.services = {s.name: s for s in services}
        self.host = host
        self.seed: SeedResult | None = None  # set by runner.build_sandbox
        self.worlds: dict[str, ServiceWorld] = {}  # each fake's part of the world, by name (runner.build_sandbox)
        self._servers: list[tuple[_Server, threading.Thread]] = []

    def start(self, ports: dict[str, int] | None = None) -> "Sandbox":
        ports = ports or {}
        for name, service in self.services.items():
            server = _Server((self.host, ports.get(name, 0)), _make_handler(service))
            port = server.server_address[1]
            service.base_url = f"http://{self.host}:{port}"
            # A short poll interval keeps stop() quick (shutdown waits for the next poll).
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{name}", daemon=True
            )
            thread.start()
            self._servers.append((server, thread))
        return self

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __getitem__(self, name: str) -> FakeService:
        return self.services[name]

    def fake(self, name: str, kind: type[_Fake]) -> _Fake | None:
        """The fake called ``name`` as the class it is (None if the sandbox has none)."""
        service = self.services.get(name)
        if service is not None and not isinstance(service, kind):
            raise TypeError(f"sandbox service {name!r} is a {type(service).__name__}, not a {kind.__name__}")
        return service

    def url(self, name: str) -> str:
        return self.services[name].base_url

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(s.counts) for name, s in self.services.items()}

    def total_requests(self) -> int:
        return sum(s.total_requests() for s in self.services.values())

    def reset_counts(self) -> None:
        for s in self.services.values():
            s.reset_counts()
