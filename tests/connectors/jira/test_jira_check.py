"""`syncd check` for Jira: the followed projects and the routes' projects exist,
a route's project is followed, and where a route creates issues the configured
issue type is one the project offers (createmeta)."""

from __future__ import annotations

import responses

from connectors.base import CheckTargets, RouteTarget
from tests.connectors.jira.test_jira import URL, make

API = f"{URL}/rest/api/3"


def project(key: str, status: int = 200) -> None:
    body = {"id": "10000", "key": key, "name": key.title()} if status == 200 else {"errorMessages": ["No project"]}
    responses.get(f"{API}/project/{key}", status=status, json=body)


def types(key: str, *names: str, total: int | None = None, start: int = 0) -> None:
    listed = [{"id": str(i), "name": n, "subtask": False} for i, n in enumerate(names)]
    body = {"issueTypes": listed, "startAt": start, "maxResults": 200, "total": total or len(names)}
    responses.get(f"{API}/issue/createmeta/{key}/issuetypes", json=body)


def route(team: str, name: str, creates: bool = False) -> RouteTarget:
    return RouteTarget(f"rules/routes.toml:4: routes.{name}.team", name, team, creates)


@responses.activate
def test_projects_routes_and_issue_types_that_exist_pass():
    project("ENG")
    project("OPS")
    types("ENG", "Task", "Bug")
    jira = make(projects=["ENG", "OPS"])
    assert jira.check_objects(CheckTargets(routes=(route("ENG", "bugs", creates=True), route("OPS", "ops")))) == []
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        f"{API}/project/ENG",
        f"{API}/project/OPS",
        f"{API}/issue/createmeta/ENG/issuetypes",
    ]


@responses.activate
def test_a_missing_project_an_unfollowed_route_and_an_issue_type_not_offered():
    project("ENG")
    project("NOPE", 404)
    project("OPS")
    project("GHOST", 404)
    types("ENG", "Task", "Story", total=3)
    types("ENG", "Epic", total=3, start=2)
    jira = make(projects=["ENG", "NOPE"], issue_types={"ENG": "Bug", "WEB": "Task"})
    routes = (route("ENG", "bugs", creates=True), route("OPS", "ops"), route("GHOST", "ghost"))
    found = jira.check_objects(CheckTargets(routes=routes))
    assert [(f.level, f.where) for f in found] == [
        ("error", "connectors.jira.projects"),
        ("warning", "connectors.jira.issue_types.WEB"),
        ("error", "rules/routes.toml:4: routes.ops.team"),
        ("error", "rules/routes.toml:4: routes.ghost.team"),
        ("error", "connectors.jira.issue_types.ENG"),
    ]
    assert found[0].message.startswith(f"no Jira project NOPE at {URL} that this account can browse")
    assert "project OPS is not followed by connector jira" in found[2].message
    assert found[3].message.startswith("no Jira project GHOST")
    assert found[4].message == (
        "project ENG (routes.bugs creates issues there) has no issue type 'Bug' this account can create "
        "(it offers: Task, Story, Epic); name one of those"
    )


def test_the_key_prefixes_are_the_followed_projects():
    assert make(projects=["ENG", "OPS"]).key_prefixes() == frozenset({"ENG", "OPS"})
