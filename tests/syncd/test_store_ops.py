"""The store as operators meet it: damage, directories, full disks, backups, redacted dead letters."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from syncd import logs
from syncd.errors import StoreFull, StoreUnusable
from syncd.store import SCHEMA_VERSION, Store
from syncd.writes import Action, TicketUpdate


def _action(key: str) -> Action:
    return Action(key=key, connector="zendesk", target="1", write=TicketUpdate(note="n"), group="t:1")


# -- dead letters: readable and without secrets ----------------------------------------------------


def test_a_dead_letter_keeps_its_words_and_loses_its_secrets(tmp_path):
    logs.register_secret("dead-letter-s3cret-value")
    with Store(tmp_path / "s.db") as store:
        store.enqueue(_action("a1"))
        [row] = store.due_actions()
        store.mark_sending(row.id)
        prose = (
            "github: repository acme/web (route team) does not exist or this token cannot see it; "
            "check the route's team and give the token access to the repository's issues"
        )
        store.mark_failed(
            row.id, f"{prose} (sent Authorization: Bearer dead-letter-s3cret-value)", retry_at=None, dead=True
        )
        assert store.get_action(row.id).last_error == f"{prose} (sent Authorization: Bearer ***)"


# -- damaged or unusable stores: one line naming what is wrong ----------------------------------------


def _links(store: Store, n: int, start: int = 0) -> None:
    with store.transaction():
        for i in range(start, start + n):
            store._x(
                "INSERT INTO links (ticket_connector, ticket_id, issue_connector, issue_id, origin, created_at) "
                "VALUES ('zendesk', ?, 'linear', ?, 'field', '2026-01-01T00:00:00.000000Z')",
                [str(i), f"i{i}"],
            )


def truncate_as_after_a_crash(path: Path) -> None:
    """The store and its -wal as a crash leaves them, then the store file cut in half
    (a disk that filled up during a copy, a restore from a partial file)."""
    with Store(path) as store:
        _links(store, 3000)
        store._x("PRAGMA wal_checkpoint(TRUNCATE)")
        _links_one = (
            "INSERT INTO links (ticket_connector, ticket_id, issue_connector, issue_id, origin, created_at) "
            "VALUES ('zendesk', 'new', 'linear', 'new', 'cli', '2026-01-01T00:00:00.000000Z')"
        )
        with store.transaction():
            store._x(_links_one)
        # Copied while still open: the -wal is kept, as after a SIGKILL.
        shutil.copy(path, f"{path}.crash")
        shutil.copy(f"{path}-wal", f"{path}.crash-wal")
    os.replace(f"{path}.crash", path)
    os.replace(f"{path}.crash-wal", f"{path}-wal")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2 // 4096 * 4096)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_truncated_store_is_named_damaged_when_opened(tmp_path, readonly):
    path = tmp_path / "syncd.db"
    truncate_as_after_a_crash(path)
    with pytest.raises(StoreUnusable) as caught:
        Store(path, readonly=readonly)
    message = str(caught.value)
    assert message.startswith(f"{path} is damaged (")
    assert "restore your last backup" in message and "\n" not in message


@pytest.mark.parametrize("readonly", [False, True])
def test_a_store_path_that_is_a_directory_is_one_line(tmp_path, readonly):
    (tmp_path / "state").mkdir()
    with pytest.raises(StoreUnusable, match=r"state is a directory, not a store file; set store.path to a file"):
        Store(tmp_path / "state", readonly=readonly)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) != 0o600  # not "tightened" either


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: permissions cannot be tested as root")
def test_an_unwritable_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreUnusable, match="check that syncd's user may write"):
            Store(locked / "syncd.db")
    finally:
        locked.chmod(0o700)


def test_a_good_store_passes_the_check(tmp_path):
    with Store(tmp_path / "syncd.db") as store:
        _links(store, 100)
        store.check()
    with Store(tmp_path / "syncd.db", readonly=True) as store:
        store.check()


# -- a full disk ----------------------------------------------------------------------------------------


def fill(store: Store) -> None:
    """Make the store's disk full: no page beyond the current ones (SQLite's max_page_count),
    and the free ones used up."""
    pages = store._q("PRAGMA page_count")[0][0]
    store._x(f"PRAGMA max_page_count = {pages}")
    try:
        while True:
            with store.transaction():
                store._x("INSERT INTO meta (key, value) VALUES (?, ?)", [f"filler-{os.urandom(8).hex()}", "x" * 500])
    except StoreFull:
        pass


def unfill(store: Store) -> None:
    store._x("PRAGMA max_page_count = 1073741823")
    with store.transaction():
        store._x("DELETE FROM meta WHERE key LIKE 'filler-%'")


def test_a_full_disk_rolls_back_the_whole_transaction_and_says_so(tmp_path):
    with Store(tmp_path / "syncd.db") as store:
        _links(store, 10)
        fill(store)
        with pytest.raises(
            StoreFull,
            match=r"the disk is full; the change in hand was rolled back and nothing is "
            r"lost; free space",
        ):
            _links(store, 2000, start=10)
        assert store.count_links() == 10  # none of the 2000: the page's transaction is all or nothing
        unfill(store)
        _links(store, 2000, start=10)
        assert store.count_links() == 2010


# -- backup ------------------------------------------------------------------------------------------


def test_a_backup_taken_while_another_connection_writes_is_one_consistent_commit(tmp_path):
    from syncd.store import backup

    path = tmp_path / "syncd.db"
    with Store(path) as store:
        _links(store, 5000)
    stop = threading.Event()
    written = []

    def daemon() -> None:  # the running daemon: its own connection, committing batches of 10 links
        with Store(path) as store:
            batch = 0
            while not stop.is_set() or batch < 5:
                _links(store, 10, start=100_000 + batch * 10)
                batch += 1
                written.append(batch)

    writer = threading.Thread(target=daemon)
    writer.start()
    try:
        while len(written) < 3:  # writing has begun
            stop.wait(0.01)
        copies = [backup(path, tmp_path / f"copy{i}.db") for i in range(3)]
    finally:
        stop.set()
        writer.join()
    counts = []
    for info in copies:
        assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
        assert not Path(f"{info.path}-wal").exists()  # one self-contained file
        with Store(info.path, readonly=True) as copy:
            copy.check()
            assert copy.schema_version == SCHEMA_VERSION
            n = copy.count_links()
        assert n == info.links and n % 10 == 0 and n >= 5030  # whole batches only: one commit's state
        counts.append(n)
    assert len(written) >= 5 and counts == sorted(counts)
    with Store(path, readonly=True) as store:
        assert store.count_links() == 5000 + 10 * len(written)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_backup_of_a_damaged_store_is_refused_and_writes_nothing(tmp_path):
    from syncd.store import backup

    path = tmp_path / "syncd.db"
    truncate_as_after_a_crash(path)
    with pytest.raises(StoreUnusable, match="is damaged"):
        backup(path, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists() and not list(tmp_path.glob(".*.tmp"))


def test_a_backup_that_meets_a_full_disk_leaves_nothing_behind(tmp_path, monkeypatch):
    from syncd import store as store_module

    path = tmp_path / "syncd.db"
    with Store(path) as store:
        _links(store, 2000)
    real_connect = sqlite3.connect

    def tiny_disk(target, *args, **kwargs):  # the backup's file system holds 4 pages
        conn = real_connect(target, *args, **kwargs)
        if str(target).endswith(".tmp"):
            conn.execute("PRAGMA max_page_count = 4")
        return conn

    monkeypatch.setattr(store_module.sqlite3, "connect", tiny_disk)
    with pytest.raises(StoreFull, match="copy.db: the disk is full; no backup was written"):
        store_module.backup(path, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists() and not list(tmp_path.glob(".*.tmp"))
