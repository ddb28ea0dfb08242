"""Each connector's declared webhook signature, checked against the service's scheme
computed here by hand (HMAC of the exact bytes), with a fixed clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import WebhookSignature, connector_class, load_registry

NOW = datetime(2026, 3, 4, 13, 15, 0, tzinfo=timezone.utc)
SECRET = b"s3cret-of-the-webhook"


def scheme(kind: str) -> WebhookSignature:
    signature = connector_class(kind, load_registry()).webhook
    assert signature is not None, f"{kind} declares no webhook signature"
    return signature


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_every_built_in_connector_declares_how_its_service_signs_webhooks():
    assert {kind for kind in load_registry() if connector_class(kind, load_registry()).webhook} >= {
        "zendesk",
        "linear",
        "github",
        "jira",
        "intercom",
    }


def test_zendesk_base64_hmac_sha256_of_timestamp_then_body():
    body = b'{"type":"zen:event-type:ticket.comment_added"}'
    stamp = "2026-03-04T13:14:30Z"
    mac = base64.b64encode(hmac.new(SECRET, stamp.encode() + body, hashlib.sha256).digest()).decode()
    headers = {"x-zendesk-webhook-signature": mac, "x-zendesk-webhook-signature-timestamp": stamp}
    zendesk = scheme("zendesk")
    assert zendesk.refusal(headers, body, SECRET, NOW) is None
    # The timestamp is signed: another one with the same signature is refused.
    assert zendesk.refusal({**headers, "x-zendesk-webhook-signature-timestamp": "2026-03-04T13:14:31Z"}, body,
                           SECRET, NOW) == "bad_signature"  # fmt: skip
    assert zendesk.refusal({"x-zendesk-webhook-signature": mac}, body, SECRET, NOW) == "unsigned"
    assert zendesk.refusal(headers, body, SECRET, NOW + timedelta(minutes=10)) == "stale"


def test_linear_hex_hmac_sha256_of_body_and_webhook_timestamp_within_a_minute():
    sent = NOW - timedelta(seconds=20)
    body = json.dumps({"action": "update", "webhookTimestamp": int(sent.timestamp() * 1000)}).encode()
    headers = {"linear-signature": hmac.new(SECRET, body, hashlib.sha256).hexdigest()}
    linear = scheme("linear")
    assert linear.refusal(headers, body, SECRET, NOW) is None
    assert linear.refusal(headers, body, SECRET, NOW + timedelta(seconds=61)) == "stale"
    assert linear.refusal(headers, body + b" ", SECRET, NOW) == "bad_signature"
    assert linear.refusal(headers, body, b"another secret", NOW) == "bad_signature"
    assert linear.refusal({}, body, SECRET, NOW) == "unsigned"
    # Signed but without its time: cannot be told fresh, refused.
    bare = b'{"action": "update"}'
    assert linear.refusal({"linear-signature": hmac.new(SECRET, bare, hashlib.sha256).hexdigest()}, bare, SECRET,
                          NOW) == "stale"  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "header", "digest", "prefix"),
    [
        ("github", "x-hub-signature-256", hashlib.sha256, "sha256="),
        ("jira", "x-hub-signature", hashlib.sha256, "sha256="),
        ("intercom", "x-hub-signature", hashlib.sha1, "sha1="),
    ],
)
def test_hub_signatures_of_the_body(kind, header, digest, prefix):
    body = b'{"action":"closed","issue":{"number":7}}'
    good = {header: prefix + hmac.new(SECRET, body, digest).hexdigest()}
    signature = scheme(kind)
    assert signature.refusal(good, body, SECRET, NOW) is None
    assert signature.refusal({header: hmac.new(SECRET, body, digest).hexdigest()}, body, SECRET, NOW) == (
        "bad_signature"
    )  # the prefix is part of it
    assert signature.refusal(good, body.replace(b"7", b"8"), SECRET, NOW) == "bad_signature"
    assert signature.refusal({}, body, SECRET, NOW) == "unsigned"


@pytest.mark.parametrize("kind", ["zendesk", "linear", "github", "jira", "intercom"])
def test_what_the_fakes_sign_passes_the_check(kind):
    signature = scheme(kind)
    body, headers = signature.sign({"event": "changed"}, SECRET, NOW)
    assert signature.refusal(lower(headers), body, SECRET, NOW) is None
    assert signature.refusal(lower(headers), body, b"wrong", NOW) == "bad_signature"
