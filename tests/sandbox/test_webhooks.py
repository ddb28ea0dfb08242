"""The fakes' webhooks: sent after a request that changes something, signed the
service's way (its connector's declared signature), never after a read."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connectors.base import connector_class, load_registry
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
from syncd.sandbox.server import Sandbox

SECRET = b"fake-webhook-secret"
NOW = datetime(2026, 3, 4, 13, 15, tzinfo=timezone.utc)


class Collector:
    """A webhook receiver on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int) -> bool:
        for _ in range(250):
            if len(self.received) >= n:
                return True
            time.sleep(0.02)
        return False


@pytest.fixture
def world():
    zendesk = ZendeskFake(seed=3)
    customer = zendesk.add_user("C", "c@example.com")
    ticket = zendesk.create_ticket("Broken", "It is broken.", requester_id=customer["id"])
    linear = LinearFake(seed=3)
    linear.add_team("ENG", "Engineering")
    collector = Collector()
    with Sandbox([zendesk, linear]) as sb:
        yield sb, zendesk, linear, ticket, collector
    collector.server.shutdown()


def test_a_write_rings_once_signed_the_services_way_and_a_read_rings_nothing(world):
    sb, zendesk, linear, ticket, collector = world
    signer = connector_class("zendesk", load_registry()).webhook
    assert signer is not None
    zendesk.send_webhooks(collector.url, SECRET, signer, clock=lambda: NOW)
    auth = (f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN)
    base = sb.url("zendesk")
    assert requests.get(f"{base}/api/v2/tickets/{ticket['id']}", auth=auth, timeout=5).ok
    answer = requests.put(
        f"{base}/api/v2/tickets/{ticket['id']}",
        json={"ticket": {"comment": {"body": "Looking into it", "public": False}}},
        auth=auth,
        timeout=5,
    )
    assert answer.ok
    assert collector.wait_for(1)
    time.sleep(0.2)  # (a webhook for the read would have come by now)
    [(headers, body)] = collector.received
    assert signer.refusal(headers, body, SECRET, NOW) is None
    assert signer.refusal(headers, body, b"another secret", NOW) == "bad_signature"


def test_a_graphql_query_rings_nothing_and_a_mutation_rings(world):
    sb, zendesk, linear, ticket, collector = world
    signer = connector_class("linear", load_registry()).webhook
    assert signer is not None
    linear.send_webhooks(collector.url, SECRET, signer, clock=lambda: NOW)
    url, auth = sb.url("linear") + "/graphql", {"Authorization": SANDBOX_API_KEY}
    query = {"query": "query Teams { teams { nodes { id key } } }"}
    assert requests.post(url, json=query, headers=auth, timeout=5).ok
    team = requests.post(url, json=query, headers=auth, timeout=5).json()["data"]["teams"]["nodes"][0]["id"]
    create = {
        "query": "mutation Create($input: IssueCreateInput!) { issueCreate(input: $input) { success } }",
        "variables": {"input": {"teamId": team, "title": "A defect"}},
    }
    assert requests.post(url, json=create, headers=auth, timeout=5).ok
    assert collector.wait_for(1)
    time.sleep(0.2)
    [(headers, body)] = collector.received
    assert signer.refusal(headers, body, SECRET, NOW) is None
    assert json.loads(body)["webhookTimestamp"] == int(NOW.timestamp() * 1000)
