"""The [store] section: a SQLite path or a PostgreSQL URL, its password kept out of the file."""

from __future__ import annotations

import pytest

from syncd.config import load_config
from syncd.errors import ConfigError
from syncd.store import PostgresStore, SQLiteStore, Store, open_store, redact_url
from tests.syncd.test_config import REGISTRY, SECRETS, VALID, write

PG = VALID.replace('path = "state/syncd.db"', 'url = "postgresql://syncd@db.internal:5432/syncd"\nschema = "ops"')


def test_a_url_names_the_postgresql_store_and_the_password_comes_from_the_environment(tmp_path):
    env = {**SECRETS, "SYNCD_STORE__PASSWORD": "db-password-from-env"}
    settings = load_config(write(tmp_path, PG), env=env, registry=REGISTRY)
    assert settings.store_location == "postgresql://syncd@db.internal:5432/syncd"
    assert settings.store_options() == {"password": "db-password-from-env", "schema": "ops", "pool_size": 4}
    assert "db-password-from-env" not in str(settings.describe())


def test_the_password_may_come_from_a_file(tmp_path):
    (tmp_path / "db.secret").write_text("from-a-file\n")
    text = PG.replace('schema = "ops"', f'schema = "ops"\npassword_file = "{tmp_path / "db.secret"}"')
    settings = load_config(write(tmp_path, text), env=SECRETS, registry=REGISTRY)
    assert settings.store_options()["password"] == "from-a-file"


def test_a_password_in_the_file_or_in_the_url_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"store.password.*SYNCD_STORE__PASSWORD"):
        load_config(
            write(tmp_path, PG.replace('schema = "ops"', 'password = "hunter22"')), env=SECRETS, registry=REGISTRY
        )
    with_password = PG.replace("syncd@db", "syncd:hunter22@db")
    with pytest.raises(ConfigError, match="the URL holds a password"):
        load_config(write(tmp_path, with_password), env=SECRETS, registry=REGISTRY)


def test_without_a_url_the_store_is_the_sqlite_file(tmp_path):
    settings = load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)
    assert settings.store_location == (tmp_path / "state" / "syncd.db").resolve()
    assert settings.store_options() == {}
    (tmp_path / "state").mkdir()
    with open_store(settings) as store:
        assert isinstance(store, SQLiteStore) and isinstance(store, Store)


def test_store_picks_its_backend_from_the_location(pg_store_target):
    url, schema = pg_store_target
    with Store(url, schema=schema) as store:
        assert isinstance(store, PostgresStore) and store.backend == "postgresql"
        assert store.location == f"{url} (schema {schema})"


def test_an_unreachable_server_is_one_line():
    with pytest.raises(Exception) as failed:
        Store("postgresql://nobody@127.0.0.1:1/none", pool_size=1)
    assert type(failed.value).__name__ == "StoreUnusable"
    assert "cannot" in str(failed.value) and "\n" not in str(failed.value)


def test_urls_are_shown_without_their_password():
    assert redact_url("postgresql://syncd:s3cret@db:5432/x") == "postgresql://syncd:***@db:5432/x"
    assert redact_url("postgresql://syncd@db/x") == "postgresql://syncd@db/x"
    # An empty password (the embedded test server's URL) is not a secret, and not refused.
    local = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert redact_url(local) == local


def test_a_url_with_an_empty_password_is_accepted(tmp_path):
    text = PG.replace("postgresql://syncd@db.internal:5432/syncd", "postgresql://postgres:@/postgres?host=/tmp/pg")
    settings = load_config(write(tmp_path, text), env=SECRETS, registry=REGISTRY)
    assert settings.store_location == "postgresql://postgres:@/postgres?host=/tmp/pg"
