"""The one HTTP session every connector uses.

One ``requests.Session`` per connector, a timeout on every call, and one
retry layer (tenacity) for 429, 5xx and connection failures that honours
``Retry-After``. It also reads the service's rate-limit headers and slows
down before the service refuses, and can space mutating requests (GitHub
asks for a second between them) and cap requests per minute.

Rate limits. Each connector declares how its service says "rate limited"
(a :class:`RateRule`: 429 by default; GitHub adds its 403s, Linear its
RATELIMITED GraphQL error). The wait asked for is, in order: ``Retry-After``;
the reset header when this answer says no requests remain; else the rule's
own wait for an answer that names none (GitHub: a minute, doubling while the
limit repeats), else the usual backoff. A wait up to ``max_wait`` is slept
here and the request sent again; a longer one raises
:class:`~syncd.errors.RateLimited` carrying the instant, and no request goes
to that service before it (the caller parks the connector meanwhile).

Budgets planned by. A :class:`WriteBudget` (GitHub's content-creation limits:
80 a minute and 500 an hour) is counted here, before sending: a request it
covers waits in place for its slot when that is within ``max_wait``, and
otherwise is not sent and raises :class:`~syncd.errors.BudgetSpent` naming
when the next slot frees, without being refused and without holding back
reads. :meth:`HttpClient.writes_done_by` tells when n such writes will have
gone, for the progress estimate.

Writes are retried only where the service cannot have applied them (429,
a connection that never opened); anything else raises
:class:`~syncd.errors.TransientError` with ``maybe_applied`` so that the
outbox looks for the write's marker before sending it again.
"""

from __future__ import annotations

import collections
import email.utils
import json as jsonlib
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import urljoin, urlsplit

import requests
import structlog
import tenacity

from syncd import __version__
from syncd.errors import (
    ApiError,
    AuthError,
    BudgetSpent,
    Conflict,
    Gone,
    NotFound,
    PayloadError,
    RateLimited,
    TransientError,
    until_text,
)

log = structlog.get_logger("syncd.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RateHeaders:
    """Names of a service's rate-limit headers (any may be None)."""

    remaining: str | None = None
    reset: str | None = None  # epoch seconds, or seconds from now if reset_is_delta
    limit: str | None = None
    reset_is_delta: bool = False


@dataclass(frozen=True)
class RateRule:
    """How a service says "rate limited" (each connector declares its own).

    ``statuses`` are rate limits whatever the body (429); ``matches`` finds
    the others (GitHub's 403 "secondary rate limit", Linear's RATELIMITED in
    a 200 or 400). ``unhinted_wait``: seconds to wait when such an answer
    names no wait (no ``Retry-After``, requests not spent), doubled each time
    it comes again in a row, up to ``unhinted_longest``; None: the backoff.
    """

    statuses: frozenset[int] = frozenset({429})
    matches: Callable[[requests.Response], bool] | None = None
    unhinted_wait: float | None = None
    unhinted_longest: float = 900.0

    def limited(self, response: requests.Response) -> bool:
        return response.status_code in self.statuses or (self.matches is not None and self.matches(response))


@dataclass(frozen=True)
class WriteBudget:
    """Limits a service sets on one kind of write, which syncd plans by instead of
    waiting to be refused: ``windows`` are (requests, seconds) pairs that must all
    hold ((80, 60), (500, 3600) for GitHub's content creation), ``covers`` says
    which requests count (method, endpoint name)."""

    windows: tuple[tuple[int, float], ...]
    covers: Callable[[str, str], bool]
    what: str = "writes"  # how people call them: "comments"

    def next_slot(self, sent: "collections.deque[float]", now: float) -> float:
        """The earliest instant (epoch seconds) at which one more such write may go."""
        at = now
        for count, seconds in self.windows:
            if len(sent) >= count:
                at = max(at, sent[-count] + seconds)
        return at

    def done_by(self, writes: int, sent: "collections.deque[float]", now: float) -> float:
        """When ``writes`` more will have gone, each at its earliest slot (epoch seconds)."""
        longest = max((seconds for _, seconds in self.windows), default=0.0)
        times = collections.deque(t for t in sent if t > now - longest)
        at = now
        for _ in range(writes):
            at = self.next_slot(times, at)
            times.append(at)
        return at


@dataclass
class RateState:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # wall clock (time.time)


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    by_endpoint: collections.Counter = field(default_factory=collections.Counter)
    throttled_seconds: float = 0.0
    # Wall-clock seconds spent in requests (waits and retries included): the bench
    # tells planning time apart from HTTP time with it.
    seconds: float = 0.0


class _Retry(Exception):
    """Internal: a response or failure worth another attempt."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, maybe_applied: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class HttpClient:
    """A retrying, rate-aware session bound to one connector and base URL."""

    def __init__(
        self,
        connector: str,
        base_url: str,
        *,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        max_wait: float = 120.0,
        backoff: float = 0.5,
        rate_headers: RateHeaders = RateHeaders(),
        low_watermark: int = 5,
        requests_per_minute: float | None = None,
        mutation_interval: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rate_rule: RateRule = RateRule(),
        service: str | None = None,
        write_budget: WriteBudget | None = None,
    ):
        self.connector = connector
        self.base_url = base_url.rstrip("/") + "/"
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = f"syncd/{__version__}"
        self.session.headers.update(headers or {})
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.rate_headers = rate_headers
        self.low_watermark = low_watermark
        self.requests_per_minute = requests_per_minute
        self.mutation_interval = mutation_interval
        self.rate = RateState()
        self.stats = HttpStats()
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self.rate_rule = rate_rule
        self.service = service or connector  # display name, in what people read
        # No request goes out before this instant (epoch seconds, wall clock):
        # the service asked for a longer wait than max_wait.
        self.blocked_until: float | None = None
        self._limited_streak = 0  # rate-limit answers naming no wait, in a row
        self._lock = threading.Lock()
        self._last_mutation: float | None = None
        self._window: collections.deque[float] = collections.deque()
        # Told of each wait for the service's rate limit slept in place (seconds): progress shows it.
        self.wait_listeners: list[Callable[[float], None]] = []
        self.write_budget = write_budget
        # When each write the budget covers went (wall clock, epoch seconds), the last hour's worth.
        self.budget_sent: collections.deque[float] = collections.deque()

    # -- public -------------------------------------------------------------

    def answer_fast(self, timeout: float = 5.0) -> None:
        """Switch this session to one attempt per request and short timeouts (at
        most ``timeout`` seconds to connect, twice that to read): for `syncd check`,
        which reports an unreachable service at once, in one line, with no retry
        in between. Rate limits are not slept on (a limit longer than none parks)."""
        connect, read = self.timeout
        self.timeout = (min(connect, timeout), min(read, 2 * timeout))
        self.max_attempts = 1
        self.max_wait = 0.0

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        expect: Iterable[int] = (),
        endpoint: str | None = None,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send one logical request; retries happen inside.

        ``idempotent`` says whether the request may be repeated when the
        service might already have acted on it (default: safe methods).
        ``expect`` lists extra statuses returned as they are (304, 404...)
        instead of raising. ``endpoint`` names the request in counters.
        ``allow_redirects=False`` returns a 3xx as it is (list it in
        ``expect``): requests would turn a redirected POST into a GET.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in SAFE_METHODS
        url = self.url(path)
        endpoint = endpoint or f"{method} {path.split('?')[0]}"
        expected = frozenset(expect)

        def attempt() -> requests.Response:
            return self._attempt(method, url, params, json, headers, idempotent, expected, endpoint, allow_redirects)

        self._check_blocked(endpoint)
        budgeted = self.write_budget is not None and self.write_budget.covers(method, endpoint)
        if budgeted:
            self._wait_for_budget(endpoint)

        started = time.perf_counter()
        try:
            return self._retrying(attempt)
        except _Retry as exc:
            tries = f"still failing after {self.max_attempts} attempts" if self.max_attempts > 1 else "failed"
            raise TransientError(
                self.connector,
                f"{endpoint} {tries}: {exc}",
                status=exc.status,
                maybe_applied=exc.maybe_applied,
                retry_after=exc.retry_after,
            ) from None
        finally:
            self.stats.seconds += time.perf_counter() - started

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request` and parse the body as JSON (None for 204/304).

        A body that is not JSON (truncated, an HTML error page) is retried
        like a 5xx for idempotent requests; for writes it raises
        TransientError with ``maybe_applied`` since the write did arrive.
        """
        method = method.upper()
        idempotent = kwargs.get("idempotent")
        if idempotent is None:
            idempotent = kwargs["idempotent"] = method in SAFE_METHODS
        endpoint = kwargs.get("endpoint") or f"{method} {path.split('?')[0]}"
        for attempt in range(1, self.max_attempts + 1):
            response = self.request(method, path, **kwargs)
            if response.status_code in (204, 304) or not response.content and response.status_code >= 300:
                return None
            try:
                return response.json()
            except ValueError:
                if not idempotent:
                    raise TransientError(
                        self.connector, f"{endpoint}: response body is not JSON", maybe_applied=True
                    ) from None
                self.stats.retries += 1
                log.warning(
                    "response body is not JSON",
                    connector=self.connector,
                    endpoint=endpoint,
                    status=response.status_code,
                    attempt=attempt,
                )
                if attempt < self.max_attempts:
                    self._sleep(self._backoff_delay(attempt))
        raise TransientError(
            self.connector, f"{endpoint}: response body is not JSON after {self.max_attempts} attempts"
        )

    # -- internals ----------------------------------------------------------

    def _retrying(self, fn: Callable[[], requests.Response]) -> requests.Response:
        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retry) and exc.retry_after is not None:
                return min(exc.retry_after, self.max_wait)
            return self._backoff_delay(state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.stats.retries += 1
            if isinstance(exc, _Retry) and exc.retry_after is not None and state.next_action:
                self._tell_wait(state.next_action.sleep)
            log.info(
                "retrying",
                connector=self.connector,
                attempt=state.attempt_number,
                reason=str(exc),
                wait=round(state.next_action.sleep, 2) if state.next_action else None,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)

    def writes_done_by(self, writes: int) -> datetime | None:
        """When ``writes`` more writes of the budget's kind will have gone, planned by its
        windows (None: this service has no such budget)."""
        if self.write_budget is None:
            return None
        at = self.write_budget.done_by(writes, self.budget_sent, self._wall())
        return datetime.fromtimestamp(at, timezone.utc)

    def _wait_for_budget(self, endpoint: str) -> None:
        """Take a slot of the write budget: wait for it in place, or raise BudgetSpent."""
        budget = self.write_budget
        assert budget is not None
        with self._lock:
            now = self._wall()
            longest = max((seconds for _, seconds in budget.windows), default=0.0)
            while self.budget_sent and self.budget_sent[0] <= now - longest:
                self.budget_sent.popleft()
            wait = budget.next_slot(self.budget_sent, now) - now
            if wait > self.max_wait:
                until = datetime.fromtimestamp(now + wait, timezone.utc)
                raise BudgetSpent(
                    self.connector,
                    f"{endpoint}: not sent: {self.service} allows no more {budget.what} before "
                    f"{until_text(until, datetime.fromtimestamp(now, timezone.utc))}",
                    until=until,
                    service=self.service,
                )
            if wait > 0:
                self.stats.throttled_seconds += wait
                log.debug("pacing writes by the service's limits", connector=self.connector, seconds=round(wait, 2))
                self._tell_wait(wait)
                self._sleep(wait)
            # Counted when it goes: a write that fails after leaving still used its slot.
            self.budget_sent.append(max(now + max(wait, 0.0), self._wall()))

    def _backoff_delay(self, attempt: int) -> float:
        base = self.backoff * (2 ** (attempt - 1))
        return min(self.max_wait, base + random.uniform(0, base / 2))

    def _attempt(
        self, method, url, params, json, headers, idempotent, expected, endpoint, allow_redirects: bool = True
    ) -> requests.Response:
        self._throttle(mutating=method not in SAFE_METHODS)
        self.stats.requests += 1
        self.stats.by_endpoint[endpoint] += 1
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=allow_redirects,
            )
        except requests.exceptions.ConnectTimeout:
            raise _Retry(f"cannot connect to {_host_port(url)} (no answer within {self.timeout[0]:g}s)") from None
        except requests.exceptions.ConnectionError as exc:
            # A refused connection never reached the service; a reset after
            # sending might have.
            sent = not _is_connect_failure(exc)
            if sent and not idempotent:
                raise TransientError(
                    self.connector, f"{endpoint}: connection lost after sending", maybe_applied=True
                ) from None
            if sent:
                raise _Retry(f"connection error ({type(exc).__name__})", maybe_applied=True) from None
            raise _Retry(f"cannot connect to {_host_port(url)} ({connect_failure_reason(exc)})") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            # The answer was cut short: the request arrived and may have acted.
            if not idempotent:
                raise TransientError(
                    self.connector, f"{endpoint}: response cut short after sending", maybe_applied=True
                ) from None
            raise _Retry("response cut short", maybe_applied=True) from None
        except requests.exceptions.Timeout:
            if not idempotent:
                raise TransientError(
                    self.connector, f"{endpoint}: read timeout after sending", maybe_applied=True
                ) from None
            raise _Retry("read timeout", maybe_applied=True) from None
        finally:
            if method not in SAFE_METHODS:
                self._last_mutation = self._clock()

        self._read_rate_headers(response)
        status = response.status_code
        if self.rate_rule.limited(response):
            wait = self._rate_limit_wait(response)
            if wait is not None and wait > self.max_wait:
                raise self._block(wait, f"{endpoint}: HTTP {status} rate limited", status)
            raise _Retry(f"HTTP {status} rate limited", status=status, retry_after=wait)
        self._limited_streak = 0
        if status in expected or 200 <= status < 300 or status == 304:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall())
        if status in RETRY_STATUSES:
            if not idempotent:
                raise TransientError(
                    self.connector,
                    f"{endpoint}: HTTP {status}",
                    status=status,
                    maybe_applied=status != 503,
                    retry_after=retry_after,
                )
            raise _Retry(f"HTTP {status}", status=status, retry_after=retry_after)
        message = f"{endpoint}: HTTP {status} {_error_summary(response)}"
        if status in (401, 403):
            raise AuthError(self.connector, message, status=status)
        if status == 404:
            raise NotFound(self.connector, message, status=status)
        if status == 410:
            raise Gone(self.connector, message, status=status)
        if status in (409, 422):
            raise Conflict(self.connector, message, status=status)
        if 500 <= status:
            raise TransientError(self.connector, message, status=status, maybe_applied=not idempotent)
        raise ApiError(self.connector, message, status=status)

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds a rate-limit answer asks for (None: the usual backoff)."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall())
        if retry_after is not None:
            return retry_after
        name = self.rate_headers.remaining
        said = response.headers.get(name) if name else None
        if said is not None and said.strip() in ("0", "0.0"):
            to_reset = self._seconds_to_reset()
            if to_reset is not None:
                return to_reset
        rule = self.rate_rule
        if rule.unhinted_wait is not None:
            self._limited_streak += 1
            return min(rule.unhinted_wait * 2 ** (self._limited_streak - 1), rule.unhinted_longest)
        if said is None:  # the answer says nothing of the budget: the last reset heard of
            return self._seconds_to_reset()
        return None

    def _block(self, wait: float, what: str, status: int | None = None) -> RateLimited:
        """Send nothing for ``wait`` seconds; the error that says so."""
        until = round(self._wall() + wait, 3)  # whole milliseconds: a reset reads back as it was given
        self.blocked_until = max(self.blocked_until or 0.0, until)
        return self._blocked_error(what, status)

    def _blocked_error(self, what: str, status: int | None = None) -> RateLimited:
        assert self.blocked_until is not None
        until = datetime.fromtimestamp(self.blocked_until, timezone.utc)
        now = datetime.fromtimestamp(self._wall(), timezone.utc)
        return RateLimited(
            self.connector,
            f"{what}: {self.service}'s rate limit; nothing is sent to {self.service} before {until_text(until, now)}",
            until=until,
            service=self.service,
            status=status,
        )

    def _check_blocked(self, endpoint: str) -> None:
        if self.blocked_until is None:
            return
        if self._wall() < self.blocked_until:
            raise self._blocked_error(f"{endpoint}: not sent")
        self.blocked_until = None

    def _seconds_to_reset(self) -> float | None:
        if self.rate.reset_at is None:
            return None
        return max(0.0, self.rate.reset_at - self._wall())

    def _read_rate_headers(self, response: requests.Response) -> None:
        names = self.rate_headers
        h = response.headers
        try:
            if names.limit and h.get(names.limit):
                self.rate.limit = int(float(h[names.limit]))
            if names.remaining and h.get(names.remaining):
                self.rate.remaining = int(float(h[names.remaining]))
            if names.reset and h.get(names.reset):
                value = float(h[names.reset])
                if names.reset_is_delta:
                    value = self._wall() + value
                elif value > 1e11:  # milliseconds (Linear)
                    value = value / 1000.0
                self.rate.reset_at = value
        except ValueError:
            log.warning("unreadable rate-limit header", connector=self.connector)

    def _throttle(self, *, mutating: bool) -> None:
        """Wait as the budgets ask, before sending."""
        with self._lock:
            delay = 0.0
            now = self._clock()
            if self.rate.remaining is not None and self.rate.remaining <= self.low_watermark:
                to_reset = self._seconds_to_reset()
                if to_reset and to_reset <= self.max_wait:
                    delay = max(delay, to_reset)
                    self.rate.remaining = None  # re-read from the next response
                # A reset further away than max_wait is not waited for in place
                # (sleeping max_wait would not reach it and would hold up every
                # other connector): the request goes, and if the service refuses
                # it, its answer parks the connector until the reset.
            if mutating and self.mutation_interval and self._last_mutation is not None:
                delay = max(delay, self.mutation_interval - (now - self._last_mutation))
            if self.requests_per_minute:
                while self._window and now - self._window[0] >= 60.0:
                    self._window.popleft()
                if len(self._window) >= self.requests_per_minute:
                    delay = max(delay, 60.0 - (now - self._window[0]))
            if delay > 0:
                self.stats.throttled_seconds += delay
                log.debug("throttling", connector=self.connector, seconds=round(delay, 2))
                self._tell_wait(delay)
                self._sleep(delay)
            if self.requests_per_minute:
                self._window.append(self._clock())

    def _tell_wait(self, seconds: float) -> None:
        for listener in self.wait_listeners:
            listener(seconds)

    def close(self) -> None:
        self.session.close()


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return True  # the TLS handshake comes before the request
    text = repr(exc)
    return (
        any(
            s in text
            for s in (
                "NewConnectionError",
                "Connection refused",
                "Failed to establish",
                "NameResolutionError",
                "Max retries exceeded with url",
            )
        )
        and "RemoteDisconnected" not in text
        and "ProtocolError" not in text
    )


def _host_port(url: str) -> str:
    """``host:port`` of a URL, the port spelled out even where the scheme implies it."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_failure_reason(exc: BaseException) -> str:
    """Why a connection could not be made, in the operator's words (refused, no such
    host, TLS spoken to a plain port...), from what requests and urllib3 raised."""
    text = repr(exc)
    if isinstance(exc, requests.exceptions.SSLError) or "SSLError" in text:
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text or "record layer" in text:
            return "TLS handshake failed: the port answers plain HTTP; use http:// or the service's TLS port"
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return "TLS certificate not trusted (CERTIFICATE_VERIFY_FAILED); check the URL's host"
        return "TLS handshake failed"
    if "NameResolutionError" in text or "Name or service not known" in text or "nodename nor servname" in text:
        return "name not found: no such host in DNS; check the URL's host"
    if "Temporary failure in name resolution" in text:
        return "name not found: DNS did not answer; check the host and the machine's DNS"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused: nothing listens on that port"
    if "Network is unreachable" in text or "No route to host" in text:
        return "network unreachable"
    return f"connection failed ({type(exc).__name__})"


def _error_summary(response: requests.Response) -> str:
    """A short, secret-free description of an error body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:120].replace("\n", " ")
    if isinstance(body, dict):
        for key in ("error", "message", "description", "errorMessages", "errors", "details"):
            if key in body and body[key]:
                value = body[key]
                return (jsonlib.dumps(value) if not isinstance(value, str) else value)[:200]
    return jsonlib.dumps(body)[:200]


def expect_dict(connector: str, value: Any, what: str, *, record_id: str | None = None) -> dict:
    """Return ``value`` if it is a JSON object, else raise PayloadError naming ``what``."""
    if not isinstance(value, dict):
        raise PayloadError(
            connector, f"{what}: expected an object, got {type(value).__name__}", record_id=record_id, payload=value
        )
    return value


def object_or_empty(value: Any) -> dict:
    """``value`` if it is a JSON object, else an empty one: for the optional nested objects of an answer."""
    return value if isinstance(value, dict) else {}
