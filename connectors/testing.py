"""The conformance exam every connector takes, against its own fake.

Each registered connector class names its fake (``Connector.fake``, an import
path such as ``"connectors.linear.fake:LinearFake"``). :class:`Exam` serves that
fake on a loopback port (:class:`syncd.sandbox.server.Sandbox`) and builds the
connector against it from the fake's ``exam_*`` answers; each check in
:data:`CHECKS` then holds the connector to the contract of
:mod:`connectors.base`:

- a first poll from ``None`` and a resume from the stored cursor lose nothing,
  and a record created between the two comes back once in the resume;
- a write's marker is found again by ``find_marker`` (helpdesk: the internal
  note of ``update_ticket``; tracker: ``add_comment``), and ``attach_ticket``
  is found again or harmless to send twice (idempotent per ticket URL);
- ``check_objects`` (syncd check) finds no error in the exam configuration;
- refused credentials raise ``AuthError``; a ticket or issue that does not
  exist raises ``NotFound`` (a tracker may say ``Gone``), and so does one
  deleted, where the fake can delete;
- a record sent as valid JSON of the wrong shape comes back in
  ``Page.rejected`` (to be quarantined), not as an exception, and the rest of
  the page is kept.

Run it for one kind (a third-party package does the same with its own)::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_my_connector(check):
        with Exam("mykind") as exam:
            check(exam)

This module is for tests: the daemon never imports it, and it imports the
sandbox (and through it the fake) only when an exam starts.
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import Any, Callable

from connectors.base import (
    CheckTargets,
    Connector,
    Finding,
    Helpdesk,
    Page,
    Tracker,
    connector_class,
    load_registry,
)
from syncd.errors import AuthError, Gone, NotFound
from syncd.writes import TicketUpdate

KEY = "0123456789abcdef0123"  # a write's idempotency key, as the engine makes them
OTHER_KEY = "fedcba9876543210fedc"


def kinds() -> list[str]:
    """The registered connector kinds (the ``syncd.connectors`` entry points)."""
    return sorted(load_registry())


def load_fake(cls: type[Connector]) -> type:
    """The fake service class a connector class names; ValueError if it names none."""
    if not cls.fake:
        raise ValueError(f"{cls.__name__} declares no fake (Connector.fake)")
    module, _, name = cls.fake.partition(":")
    return getattr(importlib.import_module(module), name)


class Exam:
    """One connector kind against its fake, served for the length of a ``with`` block."""

    def __init__(self, kind: str, registry: dict[str, Any] | None = None):
        self.kind = kind
        self.cls = connector_class(kind, registry)
        self.fake = load_fake(self.cls)()
        self.keys: dict[str, str] = {}  # issue id -> key, for trackers that need key_lookup
        self._opened: list[Connector] = []

    def __enter__(self) -> "Exam":
        from syncd.sandbox.server import Sandbox

        self._sandbox = Sandbox([self.fake])
        self._sandbox.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for connector in self._opened:
            connector.close()
        self._sandbox.__exit__(*exc)

    def connector(self, **overrides: Any) -> Any:
        """The connector, configured by the fake's exam answers (and ``overrides``)."""
        options = {**self.fake.exam_config(), **overrides}
        config = self.cls.config_model(kind=self.kind, url=self.fake.base_url, **options)
        connector = self.cls(f"exam-{self.kind}", config)
        if isinstance(connector, Tracker) and connector.needs_key_lookup:
            connector.key_lookup = self.keys.get
        self._opened.append(connector)
        return connector

    def create(self, title: str) -> str:
        return self.fake.exam_create(title)

    def drain(self, connector: Any, cursor: str | None) -> tuple[list[Page], str | None]:
        """Every page of one poll, and the cursor the engine would store at its end."""
        pages = []
        for page in connector.poll(cursor):
            pages.append(page)
            if page.cursor is not None:
                cursor = page.cursor
        for record in (r for p in pages for r in p.records):
            self.keys[record.ref.id] = record.key
        return pages, cursor


def ids(pages: list[Page]) -> Counter[str]:
    return Counter(r.ref.id for p in pages for r in p.records)


def _raises(what: tuple[type[BaseException], ...], action: Callable[[], Any], label: str) -> None:
    try:
        action()
    except what:
        return
    except Exception as exc:  # the wrong error is the finding
        raise AssertionError(
            f"{label}: raised {type(exc).__name__}: {exc}, not {' or '.join(w.__name__ for w in what)}"
        ) from exc
    raise AssertionError(f"{label}: raised nothing, not {' or '.join(w.__name__ for w in what)}")


# --- the checks ------------------------------------------------------------------------------


def check_credentials(exam: Exam) -> None:
    """Good credentials say who syncd is; refused ones are an AuthError, on check and on poll."""
    who = exam.connector().check()
    assert isinstance(who, str) and who, f"check() answered {who!r}"
    bad = exam.connector(**exam.fake.exam_bad_credentials())
    _raises((AuthError,), bad.check, "check() with refused credentials")
    _raises((AuthError,), lambda: exam.drain(bad, None), "poll() with refused credentials")


def check_poll_and_resume(exam: Exam) -> None:
    """A first poll sees what exists; a resume from its cursor sees what came after, once."""
    before = {exam.create("first"), exam.create("second")}
    connector = exam.connector()
    pages, cursor = exam.drain(connector, None)
    assert pages and pages[-1].done, "the last page of a poll says done"
    first = ids(pages)
    assert before <= set(first), f"the first poll lost {before - set(first)}"
    assert all(first[i] == 1 for i in before), f"the first poll repeated records: {first}"
    assert not [r for p in pages for r in p.rejected], "nothing malformed was sent"
    after = {exam.create("third"), exam.create("fourth")}
    resumed_pages, _ = exam.drain(exam.connector(), cursor)  # a new process, from the stored cursor
    resumed = ids(resumed_pages)
    assert after <= set(resumed), f"the resume lost {after - set(resumed)}"
    assert all(resumed[i] == 1 for i in after), f"the resume repeated new records: {resumed}"


def check_marker_found_again(exam: Exam) -> None:
    """A write carries its key's marker, and find_marker finds it; another key's is not there."""
    record = exam.create("marked")
    connector = exam.connector()
    exam.drain(connector, None)
    assert not connector.find_marker(record, KEY), "a marker found before any write"
    if isinstance(connector, Helpdesk):
        connector.update_ticket(record, TicketUpdate(note="syncd linked an issue"), KEY)
    else:
        connector.add_comment(record, "syncd linked a ticket", KEY)
    assert connector.find_marker(record, KEY), "the write's marker was not found again"
    assert not connector.find_marker(record, OTHER_KEY), "another key's marker was found"
    if isinstance(connector, Tracker):
        # attach_ticket is idempotent per ticket URL: where find_marker does not see the
        # attachment (Jira's remote links), delivery sends it again, which must change nothing.
        url = "https://help.example.com/tickets/7"
        connector.attach_ticket(record, url, "Exam ticket", "open", OTHER_KEY)
        if not connector.find_marker(record, OTHER_KEY):
            connector.attach_ticket(record, url, "Exam ticket", "open", OTHER_KEY)
        shown = [a.url for a in connector.get_issue(record).attachments]
        assert shown.count(url) <= 1, f"the ticket is attached {shown.count(url)} times"


def check_missing_and_deleted(exam: Exam) -> None:
    """A record that does not exist is NotFound (a tracker may say Gone); so is a deleted issue."""
    connector = exam.connector()
    if isinstance(connector, Helpdesk):
        _raises((NotFound,), lambda: connector.get_ticket(exam.fake.exam_missing()), "get_ticket(missing)")
        return
    _raises((NotFound, Gone), lambda: connector.get_issue(exam.fake.exam_missing()), "get_issue(missing)")
    record = exam.create("deleted")
    exam.drain(connector, None)
    try:
        exam.fake.exam_delete(record)
    except NotImplementedError:
        return  # the service cannot delete issues
    _raises((Gone, NotFound), lambda: connector.get_issue(record), "get_issue(deleted)")


def check_malformed_record_is_rejected(exam: Exam) -> None:
    """A record of the wrong shape comes back in Page.rejected; the rest of the page is kept."""
    good, bad = exam.create("well formed"), exam.create("malformed")
    exam.fake.malform(bad)
    try:
        pages, _ = exam.drain(exam.connector(), None)
    except Exception as exc:  # the finding: one bad record stopped the feed
        raise AssertionError(
            f"a malformed record raised {type(exc).__name__}: {exc}, not a Rejected in the page"
        ) from exc
    rejected = [r for p in pages for r in p.rejected]
    assert good in ids(pages), "the well-formed record was lost with the malformed one"
    assert bad not in ids(pages), "the malformed record was normalised as if it were whole"
    assert [r.record_id for r in rejected] == [bad], f"rejected: {rejected}"
    assert all(r.reason for r in rejected), "a rejection says why"


def check_objects_as_configured(exam: Exam) -> None:
    """What the exam configuration names exists in the fake: ``check_objects`` (syncd check)
    answers a list of findings, none of them an error, and the fake answers its requests."""
    connector = exam.connector()
    connector.check()
    found = connector.check_objects(CheckTargets())
    assert isinstance(found, list) and all(isinstance(f, Finding) for f in found), f"check_objects answered {found!r}"
    errors = [f for f in found if f.level == "error"]
    assert not errors, f"check_objects found errors in the exam configuration: {errors}"


CHECKS: tuple[Callable[[Exam], None], ...] = (
    check_credentials,
    check_objects_as_configured,
    check_poll_and_resume,
    check_marker_found_again,
    check_missing_and_deleted,
    check_malformed_record_is_rejected,
)
