"""Webhook doorbells: a signed webhook makes the daemon poll that feed now.

With ``daemon.webhook_address`` set, the daemon listens there for the
webhooks of the services whose connector has a ``webhook_secret``:
``POST /webhooks/<connector name>``. A delivery is checked with the way the
service signs (its connector's :attr:`~connectors.base.Connector.webhook`)
and the configured secret. An unsigned, wrongly signed or stale delivery
gets 401 and is counted (``syncd_webhooks{result=...}``), and nothing
else happens. A genuine one only rings: the daemon polls that connector's
feed at once instead of at its next interval. What the payload says is
never read as data: polling stays the source of truth, so a lost webhook
costs latency and a forged one (with the secret) costs one poll.

Rings of one feed closer together than :data:`MIN_GAP` seconds make one
poll (a burst of webhooks, or a replayed one, cannot make syncd hammer the
service's API).
"""

from __future__ import annotations

import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping

import structlog

from connectors.base import Connector, WebhookSignature, load_secret
from syncd.errors import ConfigError

log = structlog.get_logger("syncd.doorbell")

# The shortest time between two polls of one feed rung by webhooks (seconds).
MIN_GAP = 1.0
# The largest webhook body read (bytes); a larger one is refused unread (413).
MAX_BODY = 5 * 1024 * 1024
PATH_PREFIX = "/webhooks/"

# What the listener answers, by the outcome it counts.
RESULTS = ("rang", "unsigned", "bad_signature", "stale", "unknown")


class Doorbell:
    """Which connector a delivery is for, whether it is genuine, and the ring.

    ``ring(name)`` is called for a genuine delivery; ``count(name, result)``
    for every delivery (result one of :data:`RESULTS`)."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        secrets: Mapping[str, bytes],
        clock: Callable[[], datetime],
        ring: Callable[[str], None],
        count: Callable[[str, str], None] = lambda name, result: None,
    ):
        self.schemes: dict[str, WebhookSignature] = {}
        for name, secret in secrets.items():
            scheme = type(connectors[name]).webhook
            if scheme is not None:
                self.schemes[name] = scheme
        self.secrets = dict(secrets)
        self.clock = clock
        self.ring = ring
        self.count = count

    @classmethod
    def for_connectors(
        cls,
        connectors: Mapping[str, Connector],
        clock: Callable[[], datetime],
        ring: Callable[[str], None],
        count: Callable[[str, str], None] = lambda name, result: None,
    ) -> "Doorbell":
        """The doorbell of every connector with a webhook secret; ConfigError (one line
        each) for a secret given to a connector whose service sends no webhooks syncd can check."""
        secrets: dict[str, bytes] = {}
        problems = []
        for name, connector in connectors.items():
            c = connector.config
            secret = load_secret(name, "webhook_secret", c.webhook_secret, c.webhook_secret_file)
            if secret is None or not secret.get_secret_value():
                continue
            if type(connector).webhook is None:
                problems.append(
                    f"connectors.{name}.webhook_secret: syncd takes no webhooks from {connector.label}; "
                    "remove the secret (the connector is polled on its interval)"
                )
                continue
            secrets[name] = secret.get_secret_value().encode()
        if problems:
            raise ConfigError(problems)
        return cls(connectors, secrets, clock, ring, count)

    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Answer one POST: (HTTP status, a line of text). ``headers`` with lower-case names."""
        name = path.split("?", 1)[0][len(PATH_PREFIX) :].strip("/") if path.startswith(PATH_PREFIX) else ""
        scheme = self.schemes.get(name)
        if scheme is None:
            self.count(name or "-", "unknown")
            return 404, "no connector takes webhooks here"
        refusal = scheme.refusal(headers, body, self.secrets[name], self.clock())
        if refusal is not None:
            self.count(name, refusal)
            log.warning("webhook refused", connector=name, why=refusal.replace("_", " "))
            return 401, "refused: the signature is missing, wrong or stale"
        self.count(name, "rang")
        self.ring(name)
        return 202, "polling now"


class Listener:
    """The HTTP server in front of a :class:`Doorbell` (a thread of the daemon)."""

    def __init__(self, address: str, doorbell: Callable[[], Doorbell | None]):
        self.address = address
        self.doorbell = doorbell
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        host, _, port = self.address.rpartition(":")
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413, "too large")
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length > 0 else b""
                bell = listener.doorbell()
                if bell is None:
                    self._answer(503, "not ready")
                    return
                status, text = bell.receive(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self._answer(status, text)

            def do_GET(self) -> None:
                self._answer(405, "webhooks are POSTed")

            def _answer(self, status: int, text: str) -> None:
                data = (text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        host = host.strip("[]") or "127.0.0.1"
        server: type[ThreadingHTTPServer] = ThreadingHTTPServer
        if ":" in host:
            import socket

            class Server6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server = Server6
        try:
            self._server = server((host, int(port)), Handler)
        except OSError as exc:
            raise ConfigError(
                [f"daemon.webhook_address: cannot listen on {self.address}: {exc.strerror or exc}"]
            ) from None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="syncd-webhooks", daemon=True).start()
        log.info("webhook listener up", address=f"http://{self.address}{PATH_PREFIX}<connector>")

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
