"""Check recorded HTTP requests against an official OpenAPI description.

Reusable for every REST connector (Zendesk, GitHub, Jira). Typical use in a
test module::

    from tests.contract.openapi import assert_calls_conform, contract_fixture

    zendesk_contract = contract_fixture(
        "zendesk/oas.yaml",
        allow_query={("GET", "/api/v2/incremental/tickets/cursor"): {"per_page"}},
        forbid_paths={"/api/v2/search"},
    )

    @responses.activate
    def test_poll_conforms(zendesk_contract):
        ...drive the connector against ``responses`` mocks...
        assert_calls_conform(responses.calls, zendesk_contract)

``contract_fixture`` makes a session-scoped fixture that skips (through
``require_shared``) when ``../shared/specs`` is absent. ``load_contract`` is
the same without pytest, cached per spec file and options.

What is checked for each request (AssertionError naming the request if not):

- the path matches a path template of the spec, whatever the scheme, host
  and base path of the URL: ``https://HOST/api/v3/repos/o/r`` is matched as
  ``/repos/o/r`` when the spec has no ``/api/v3`` paths;
- the path is not in ``forbid_paths`` (e.g. Jira's withdrawn search);
- the method is defined for that path;
- path and query parameters, the JSON body and the security requirement
  (an Authorization header of the declared scheme) validate, by openapi-core
  with document validation off (the published Zendesk and Jira files do not
  pass it, and GitHub's is slow to check);
- no query parameter is sent that the operation does not declare, unless
  ``allow_query`` lists it for (METHOD, path template): parameters the
  service documents but its description leaves out.

``patches`` maps JSON pointers in the description to replacement values,
applied to an in-memory copy before the validator is built. Use it, with a
comment giving the documentation's word, where the description is wrong
about something the service accepts (a parameter marked required that the
docs make optional, a request body the description omits).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from openapi_core.templating.paths.finders import APICallPathFinder

from tests.conftest import SPECS, require_shared

# Requests are re-addressed to this origin before validation, and the spec's
# servers are replaced by it, so that only the path takes part in matching.
_ORIGIN = "http://contract.invalid"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

AllowQuery = Mapping[tuple[str, str], Iterable[str]]


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> dict:
    """Parse a description once per session (Zendesk's YAML takes seconds)."""
    with open(path, "rb") as fh:
        if path.endswith((".yaml", ".yml")):
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return json.load(fh)


def _set_pointer(doc: dict, pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    target: Any = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)) + "$")


@dataclass
class Contract:
    """A request validator for one API description."""

    name: str
    openapi: OpenAPI
    templates: tuple[str, ...]
    allow_query: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    forbid_paths: frozenset[str] = frozenset()

    def validate(self, request: requests.PreparedRequest | requests.Request) -> str:
        """Validate one request; return "METHOD /template" or raise AssertionError."""
        if isinstance(request, requests.Request):
            request = request.prepare()
        method = (request.method or "GET").upper()
        url = urlsplit(request.url or "")
        label = f"{method} {url.path}"
        if any(_template_regex(t).match(url.path) for t in self.forbid_paths):
            raise AssertionError(f"{self.name}: {label} uses a path this project must not use")
        spec_path, template, found = self._locate(method, url.path, label)
        operation = found.operation
        if any(_template_regex(t).match(spec_path) for t in self.forbid_paths):
            raise AssertionError(f"{self.name}: {label} uses {template}, which this project must not use")

        declared = {p["name"] for p in self._parameters(found) if p["in"] == "query"}
        allowed = self.allow_query.get((method, template), frozenset())
        sent = {name for name, _ in parse_qsl(url.query, keep_blank_values=True)}
        unknown = sorted(sent - declared - allowed)
        if unknown:
            raise AssertionError(
                f"{self.name}: {label}: query parameter(s) {', '.join(unknown)} are not in the "
                f"description of {method} {template} (declared: {', '.join(sorted(declared)) or 'none'}); "
                "add them to allow_query only if the service's documentation describes them"
            )

        # Allow-listed parameters are not in the description: leave them out
        # so the validator does not see them at all.
        kept = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in allowed - declared]
        rewritten = request.copy()
        rewritten.url = _ORIGIN + spec_path + (("?" + urlencode(kept)) if kept else "")
        errors = list(self.openapi.iter_request_errors(RequestsOpenAPIRequest(rewritten)))
        if errors:
            details = "; ".join(_describe(e) for e in errors)
            op_id = operation["operationId"] if "operationId" in operation else template
            raise AssertionError(f"{self.name}: {label} does not conform to {op_id}: {details}")
        return f"{method} {template}"

    # -- internals ----------------------------------------------------------

    def _locate(self, method: str, path: str, label: str):
        """Find the spec path for ``path``, dropping a base path prefix if needed."""
        segments = path.split("/")
        finder = APICallPathFinder(self.openapi.spec)
        method_missing = None
        for start in range(1, len(segments)):
            candidate = "/" + "/".join(segments[start:])
            if start > 1 and not any(
                _template_regex(t).match(candidate) and not t.startswith("/{") for t in self.templates
            ):
                continue
            try:
                found = finder.find(method.lower(), _ORIGIN + candidate)
            except OperationNotFound:
                method_missing = candidate
                continue
            except (PathNotFound, ServerNotFound):
                continue
            return candidate, found.path.parts[-1], found
        if method_missing:
            raise AssertionError(
                f"{self.name}: {label}: the description has {method_missing} but no {method} operation on it"
            )
        raise AssertionError(f"{self.name}: {label}: no such path in the description")

    @staticmethod
    def _parameters(found) -> list[dict]:
        params: dict[tuple[str, str], dict] = {}
        for owner in (found.path, found.operation):
            if "parameters" not in owner:
                continue
            for param in owner / "parameters":
                with param.open() as p:
                    params[(p["name"], p["in"])] = {"name": p["name"], "in": p["in"]}
        return list(params.values())


def _describe(error: Exception) -> str:
    """The error and its schema errors, one line, without pages of request body."""
    text = str(error)
    if len(text) > 200:
        text = text[:200] + "..."
    causes = []
    cause = error.__cause__
    while cause is not None:
        sub = getattr(cause, "schema_errors", None)
        if sub:
            causes.extend(f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in sub)
        elif str(cause) and str(cause) not in text:
            causes.append(str(cause))
        cause = cause.__cause__
    for sub in getattr(error, "schema_errors", None) or ():
        causes.append(f"{'/'.join(str(p) for p in sub.path) or '(root)'}: {sub.message}")
    return text + (f" ({'; '.join(causes)})" if causes else "")


def _freeze(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, (set, frozenset)) else str(v))


@functools.lru_cache(maxsize=None)
def _build(path: str, allow_query: str, forbid_paths: str, patches: str) -> Contract:
    doc = copy.deepcopy(_parse(path))
    for pointer, value in json.loads(patches).items():
        _set_pointer(doc, pointer, value)
    doc["servers"] = [{"url": _ORIGIN}]
    # Operation-level servers would take precedence: point them here too.
    for item in doc.get("paths", {}).values():
        item.pop("servers", None)
        for method in _METHODS:
            if isinstance(item.get(method), dict):
                item[method].pop("servers", None)
    openapi = OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))
    allow = {(m.upper(), t): frozenset(names) for (m, t), names in json.loads(allow_query)}
    return Contract(
        name=Path(path).parent.name or Path(path).name,
        openapi=openapi,
        templates=tuple(doc.get("paths", {})),
        allow_query=allow,
        forbid_paths=frozenset(json.loads(forbid_paths)),
    )


def load_contract(
    spec: str | Path,
    *,
    allow_query: AllowQuery | None = None,
    forbid_paths: Iterable[str] = (),
    patches: Mapping[str, Any] | None = None,
) -> Contract:
    """A :class:`Contract` for the description at ``spec``, built once per session.

    ``allow_query``: {(METHOD, path template): {names}} the docs describe but
    the description omits. ``forbid_paths``: path templates (``{x}`` allowed)
    that must not be used. ``patches``: {JSON pointer: value} corrections.
    """
    allow = sorted(([m.upper(), t], sorted(names)) for (m, t), names in (allow_query or {}).items())
    return _build(
        str(Path(spec).resolve()), json.dumps(allow), json.dumps(sorted(forbid_paths)), _freeze(dict(patches or {}))
    )


def contract_fixture(relative: str, **options: Any):
    """A session-scoped pytest fixture giving the Contract for ``SPECS/relative``.

    Skips, saying why, when ../shared/specs is absent.
    """

    @pytest.fixture(scope="session")
    def _fixture() -> Contract:
        return load_contract(require_shared(SPECS / relative), **options)

    return _fixture


def recorded_requests(calls: Iterable[Any]) -> list[requests.PreparedRequest]:
    """PreparedRequests from ``responses.calls`` (or PreparedRequests as they are)."""
    return [getattr(call, "request", call) for call in calls]


def assert_calls_conform(calls: Iterable[Any], contract: Contract) -> list[str]:
    """Validate every recorded request; return "METHOD /template" for each, in order.

    Raises AssertionError listing every request that does not conform.
    """
    seen, failures = [], []
    requests_made = recorded_requests(calls)
    if not requests_made:
        raise AssertionError("no requests were recorded: nothing to check against the description")
    for request in requests_made:
        try:
            seen.append(contract.validate(request))
        except AssertionError as exc:
            failures.append(str(exc))
    if failures:
        raise AssertionError("\n".join(failures))
    return seen
