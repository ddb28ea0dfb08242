"""connectors/base.py helpers every connector uses: its secrets."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from connectors.base import load_secret, require_secret
from syncd.errors import ConfigError


def test_a_secret_given_directly_wins_over_its_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("from-file\n", encoding="utf-8")
    assert load_secret("desk", "token", SecretStr("from-env"), str(path)).get_secret_value() == "from-env"
    assert load_secret("desk", "token", None, str(path)).get_secret_value() == "from-file"
    assert load_secret("desk", "token", None, None) is None


def test_an_unreadable_secret_file_is_one_line_naming_the_key(tmp_path):
    missing = str(tmp_path / "gone")
    with pytest.raises(ConfigError) as caught:
        load_secret("desk", "api_key", None, missing)
    [line] = caught.value.problems
    assert line.startswith(f"connectors.desk.api_key_file: cannot read {missing!r} (")
    assert line.endswith("check the path and its permissions") and "\n" not in line


def test_a_required_secret_that_is_empty_or_absent_says_what_to_do(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        require_secret("gh", "token", None, str(empty), "put a token in it")
    assert caught.value.problems == [f"connectors.gh.token_file: {str(empty)!r} is empty; put a token in it"]
    with pytest.raises(ConfigError) as caught:
        require_secret("gh", "token", SecretStr(""), None, "set it")
    assert caught.value.problems == ["connectors.gh.token: not set or empty; set it"]
    assert require_secret("gh", "token", SecretStr("t"), None, "set it").get_secret_value() == "t"
