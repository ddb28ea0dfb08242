"""The [stages] section: where a follow-up's stage is shown, and one message per mistake."""

from __future__ import annotations

import pytest

from syncd.errors import ConfigError
from tests.mappings.test_files import load_mappings, write

ROUTE = """
[routes.all]
tracker = "linear"
team = "ENG"
escalate = { tag = "escalated" }
"""


def problems(tmp_path, stages: str) -> list[str]:
    directory = write(tmp_path / "m", {"routes.toml": ROUTE, "stages.toml": stages})
    with pytest.raises(ConfigError) as caught:
        load_mappings(directory, trackers={"linear": "linear"})
    return [line.replace(str(directory) + "/", "") for line in caught.value.problems]


def test_stages_field_and_tag_prefix_load(tmp_path):
    directory = write(
        tmp_path / "m", {"routes.toml": ROUTE, "stages.toml": '[stages]\nfield = 36000000099\ntag_prefix = "fu_"\n'}
    )
    mappings = load_mappings(directory, trackers={"linear": "linear"})
    assert (mappings.stage_field, mappings.stage_tag_prefix) == ("36000000099", "fu_")
    assert mappings.shows_stages


def test_without_a_stages_section_nothing_is_shown(tmp_path):
    mappings = load_mappings(write(tmp_path / "m", {"routes.toml": ROUTE}))
    assert not mappings.shows_stages and mappings.stage_field is None and mappings.stage_tag_prefix is None


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "[stages]\n",
            'stages.toml:1: stages: say where stages are shown: field = "<field id>" and/or '
            'tag_prefix = "syncd_stage_"',
        ),
        (
            '[stages]\ntag_prefix = "Stage "\n',
            "stages.toml:2: stages.tag_prefix: must be lower-case letters, digits, _, - or : without spaces "
            '(a helpdesk tag begins with it), e.g. "syncd_stage_"',
        ),
        ('[stages]\nfield = ""\n', "stages.toml:2: stages.field: must not be empty"),
        ("[stages]\nfeild = 1\n", "stages.toml:2: stages.feild: unknown key"),
        ('stages = "x"\n', "stages.toml:1: stages: must be a table: write [stages]"),
        ("[stages.one]\nfield = 1\n", "stages.toml:1: stages.one: unknown key"),
    ],
)
def test_bad_stages_sections(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_stages_defined_twice(tmp_path):
    directory = write(
        tmp_path / "m",
        {"routes.toml": ROUTE, "a.toml": "[stages]\nfield = 1\n", "b.toml": '[stages]\ntag_prefix = "x_"\n'},
    )
    with pytest.raises(ConfigError) as caught:
        load_mappings(directory)
    assert caught.value.problems == [
        f"{directory}/b.toml:1: stages: already defined in {directory}/a.toml:1; define it once"
    ]
