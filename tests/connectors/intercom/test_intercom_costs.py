"""What the Intercom feed costs, counted by the fake: a first sync of 1,000 tickets and an idle poll."""

from __future__ import annotations

import math

from connectors.intercom.connector import IntercomConfig, IntercomConnector
from connectors.intercom.fake import IntercomFake
from syncd.sandbox.server import Sandbox
from tests.connectors.conftest import Clock

TICKETS, CONTACTS, COMPANIES = 1000, 100, 10


def test_first_sync_of_1000_tickets_and_an_idle_poll(clock: Clock):
    fake = IntercomFake(clock=clock)
    companies = [fake.add_company(f"Company {i}", plan="business") for i in range(COMPANIES)]
    contacts = [
        fake.add_contact(f"Customer {i}", f"c{i}@example.com", company_id=companies[i % COMPANIES]["id"])
        for i in range(CONTACTS)
    ]
    for i in range(TICKETS):
        fake.create_ticket(f"Ticket {i}", "<p>help</p>", contact_id=contacts[i % CONTACTS]["id"])
        if i % 100 == 99:
            clock.advance(1)
    with Sandbox([fake]):
        config = IntercomConfig(kind="intercom", url=fake.base_url, **fake.exam_config())
        connector = IntercomConnector("helpdesk", config, clock=clock)
        cursor = None
        seen = 0
        for page in connector.poll(None):
            for record in page.records:
                connector.comments(record.ref.id)  # as the engine does for each changed ticket
                seen += 1
            cursor = page.cursor or cursor
        assert seen == TICKETS
        counts = dict(fake.counts)
        # One search per 150 tickets, one conversation read per ticket (tags and parts; the
        # comments come from it), each contact once; the companies come inside the conversation.
        assert counts == {
            "POST /tickets/search": math.ceil(TICKETS / 150),
            "GET /conversations/{id}": TICKETS,
            "GET /contacts/{id}": CONTACTS,
        }
        assert fake.total_requests() == 7 + 1000 + 100

        # The next poll re-reads what changed within the overlap before the first one
        # (search may trail writes): the burst's pages once more, nothing delivered.
        def idle() -> dict[str, int]:
            nonlocal cursor
            fake.reset_counts()
            clock.advance(61)
            pages = list(IntercomConnector("helpdesk", config, clock=clock).poll(cursor))
            assert [r for p in pages for r in p.records] == []
            cursor = pages[-1].cursor
            return dict(fake.counts)

        assert idle() == {"POST /tickets/search": math.ceil(TICKETS / 150)}
        assert idle() == {"POST /tickets/search": 1}
        assert idle() == {"POST /tickets/search": 1}
