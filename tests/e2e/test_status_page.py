"""The daemon's status page in a real headless browser, /metrics, and a health port already taken.

The browser is Debian's chromium (``make test`` installs it where it is
missing and we are root: the Makefile's ``browser`` target). Without one the
test fails and says how to get it; it is skipped only when asked, with
SYNCD_SKIP_BROWSER=1, and then says so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.sandbox.harness import Playground
from syncd.store import Store

pytestmark = pytest.mark.e2e

BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, or a failure that says how to get it (a skip only when asked for)."""
    found = os.environ.get("SYNCD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = (
        "no chromium for the status page's browser test: `make browser` installs Debian's chromium "
        "(as root: apt-get install -y chromium), or set SYNCD_CHROMIUM to a Chromium binary"
    )
    if os.environ.get("SYNCD_SKIP_BROWSER") == "1":
        pytest.skip(f"SYNCD_SKIP_BROWSER=1: {why}")
    pytest.fail(why, pytrace=False)


def render(chromium: str, url: str) -> str:
    """The DOM chromium built from ``url`` (scripts run, the page parsed as a browser does)."""
    with tempfile.TemporaryDirectory(prefix="syncd-chromium-") as profile:
        done = subprocess.run(
            [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0 and "<html" in done.stdout, (
        f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    )
    return done.stdout


class Page(HTMLParser):
    """Tables by class, as lists of rows of cell texts; the meta refresh; script elements."""

    def __init__(self, dom: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.refresh: str | None = None
        self.scripts = 0
        self.texts: dict[str, str] = {}
        self.title = ""
        self._in_title = False
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._id: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            self.refresh = a.get("content")
        elif tag == "script":
            self.scripts += 1
        elif tag == "title":
            self._in_title = True
        if a.get("id"):
            self._id = a["id"]
            self.texts[self._id] = ""

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif self._id is not None:
            self._id = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell.append(data)
        if self._id is not None:
            self.texts[self._id] += data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def metric(base: str, name: str, **labels: str) -> float | None:
    answer = get(base + "/metrics")
    if answer is None:
        return None
    for family in text_string_to_metric_families(answer[1]):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


@pytest.fixture
def running(tmp_path):
    """``syncd run`` against a sandbox (Zendesk and Linear), giving up on a write after one attempt."""
    with Playground(tmp_path, trackers=("linear",)) as pg:
        port = free_port()
        env = {
            **pg.cli_env(),
            "SYNCD_DAEMON__HEALTH_ADDRESS": f"127.0.0.1:{port}",
            "SYNCD_DAEMON__MAX_ATTEMPTS": "1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: get(base + "/healthz"), what="/healthz to answer")
            yield pg, proc, base, env
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.communicate(timeout=10)


def test_the_status_page_in_a_browser_shows_a_dead_letter_the_test_caused(running, chromium):
    pg, proc, base, env = running
    # The first sync delivers everything it planned.
    wait_for(
        lambda: (
            (metric(base, "syncd_actions_delivered_total") or 0) > 0
            and metric(base, "syncd_outbox", state="pending") == 0
            and metric(base, "syncd_outbox", state="sending") == 0
        ),
        what="the first sync to be delivered",
    )
    page = Page(render(chromium, base + "/"))
    assert page.refresh is not None and int(page.refresh) > 0
    assert page.scripts == 0
    assert page.texts["overall"] == "all well"
    connectors = {row[0]: row for row in page.tables["connectors"][1:]}
    assert set(connectors) == {"zendesk", "linear"}
    assert all(row[2] == "ok" and row[3].endswith("ago)") for row in connectors.values())
    assert page.tables.get("dead-letters") is None  # "none"

    # A record set aside whose reason is markup and script: the browser shows it as text and runs nothing.
    hostile = "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\"> & \"q\""
    with Store(pg.store_path, shared=True) as store:
        store.quarantine("linear", None, hostile, {})  # no record id: not read again, it stays

    # Every write to a ticket now fails with a 500, and one attempt is all the daemon makes:
    # an engineer moves a linked issue, and the note it gives the ticket is a dead letter.
    links = subprocess.run(
        [sys.executable, "-m", "syncd", "links", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    link = json.loads(links.stdout)[0]
    ticket = link["ticket"]  # its key, "#1"
    pg.zendesk.inject("500", r"PUT /api/v2/tickets/\{id\}$")
    pg.engineer_move(link["issue"], "Done" if link["issue_state"] != "Done" else "In Progress")
    wait_for(lambda: (metric(base, "syncd_outbox", state="dead") or 0) >= 1, what="a dead letter")

    page = Page(render(chromium, base + "/"))
    assert page.texts["overall"] == "needs attention"
    assert page.title == "syncd status" and page.scripts == 0
    assert [r[4] for r in page.tables["quarantine"][1:]] == [hostile]
    header, *dead = page.tables["dead-letters"]
    assert header == ["Id", "Write", "To", "Attempts", "Error"]
    [row] = [r for r in dead if r[2] == f"zendesk {ticket}"]
    assert row[1] == "ticket update" and row[3] == "1" and "500" in row[4]
    facts = dict(page.tables["facts"])
    assert facts["Dead letters"] == str(len(dead))
    history = page.tables["history"][1:]
    assert any(r[1] == "dead letter" and r[2] == f"zendesk {ticket}" for r in history)

    # The same facts from the command line, as JSON and as a table.
    status = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    facts_json = json.loads(status.stdout)
    assert [d["target"] for d in facts_json["dead_letters"]].count(ticket.lstrip("#")) == 1
    assert facts_json["daemon"]["pid"] == proc.pid
    table = subprocess.run(
        [sys.executable, "-m", "syncd", "status"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert f"ticket update, zendesk {ticket}: " in table
    assert "{'" not in table and '{"' not in table and "None" not in table  # no Python reprs, no JSON


def test_metrics_count_with_counters_and_show_what_an_operator_watches(running):
    pg, proc, base, env = running
    wait_for(lambda: metric(base, "syncd_cycle_duration_seconds_count"), what="a cycle")
    pg.config_path.write_text(pg.config_path.read_text().replace("poll_interval = 1", "poll_interval = -5"))
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(base, "syncd_reloads_total", outcome="refused") == 1, what="the reload to be refused")
    wait_for(
        lambda: metric(base, "syncd_last_success_timestamp_seconds", connector="linear"),
        what="a poll of Linear to go through",
    )
    families = {f.name: f for f in text_string_to_metric_families(get(base + "/metrics")[1])}
    for name in (
        "syncd_polls",
        "syncd_records",
        "syncd_actions_delivered",
        "syncd_actions_failed",
        "syncd_http_requests",
        "syncd_rate_limit_waits",
        "syncd_rate_limit_parked_seconds",
        "syncd_reloads",
        "syncd_privacy_rewritten",
    ):
        assert families[name].type == "counter", name
    counted = [s.name for f in families.values() for s in f.samples if s.name.endswith("_total")]
    assert counted and all(families[n.removesuffix("_total")].type == "counter" for n in counted)
    assert families["syncd_cycle_duration_seconds"].type == "histogram"
    assert families["syncd_quarantine_records"].type == "gauge"
    assert {s.labels["connector"] for s in families["syncd_last_success_timestamp_seconds"].samples} == {
        "zendesk",
        "linear",
    }
    assert metric(base, "syncd_http_requests_total", connector="zendesk") > 0


def test_the_status_page_is_refused_off_loopback_and_healthz_is_not(tmp_path):
    """Served on every address, the page (it has no login) answers this machine only."""
    from syncd.app import build_app
    from syncd.daemon import Daemon

    with Playground(tmp_path, trackers=("linear",)) as pg:
        daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None))
        try:
            daemon.step()
            body, status, ctype = daemon.status_page("127.0.0.1")
            assert status == 200 and ctype.startswith("text/html") and b"<h2>Connectors</h2>" in body
            assert daemon.status_page("::1")[1] == 200 and daemon.status_page("::ffff:127.0.0.1")[1] == 200
            body, status, _ = daemon.status_page("192.0.2.7")
            assert status == 403 and b"this machine only" in body
            assert daemon.status_page("2001:db8::1")[1] == 403
        finally:
            daemon.app.close()


def test_a_health_address_this_machine_does_not_have_is_one_line_and_exit_2(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        env = {**pg.cli_env(), "SYNCD_DAEMON__HEALTH_ADDRESS": "192.0.2.1:9187"}  # TEST-NET-1: nobody's
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "run"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        assert done.stderr == (
            "syncd: daemon.health_address: cannot listen on 192.0.2.1:9187: this machine has no such address; "
            "use 127.0.0.1, 0.0.0.0 or one of its own addresses\n"
        )


def test_a_health_port_already_taken_is_one_line_and_exit_2(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {**pg.cli_env(), "SYNCD_DAEMON__HEALTH_ADDRESS": address}
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert err == (
            f"syncd: daemon.health_address: cannot listen on {address}: the port is already in use "
            "(another syncd, or another program); stop it or choose another port\n"
        )
        # Nothing was polled: the store lock is free for the next start.
        assert pg.zendesk.total_requests() == 0


def test_an_ipv6_loopback_health_address_serves_the_page(tmp_path):
    from syncd.app import build_app
    from syncd.config import DaemonSettings
    from syncd.daemon import Daemon

    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    with Playground(tmp_path, trackers=("linear",)) as pg:
        settings = pg.settings().model_copy(update={"daemon": DaemonSettings(health_address=f"[::1]:{port}")})
        daemon = Daemon(lambda: settings, lambda s: build_app(s, sleep=lambda _: None))
        daemon.start_health_server()
        try:
            daemon.step()
            status, body = get(f"http://[::1]:{port}/")
            assert status == 200 and "<h2>Connectors</h2>" in body
            assert get(f"http://[::1]:{port}/healthz")[0] == 200
        finally:
            daemon.stop_health_server()
            daemon.app.close()
