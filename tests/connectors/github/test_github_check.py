"""`syncd check` for GitHub: a route's repository is one the connector follows
(the followed ones are read by check()); one that is not is said, and whether it exists."""

from __future__ import annotations

import responses

from connectors.base import CheckTargets, RouteTarget
from tests.connectors.github.test_github import API, make, repo_body


def route(team: str, name: str) -> RouteTarget:
    return RouteTarget(f"rules/routes.toml:7: routes.{name}.team", name, team)


@responses.activate
def test_routes_to_followed_repositories_ask_nothing():
    gh = make(("acme/web", "acme/api"))
    assert gh.check_objects(CheckTargets(routes=(route("acme/web", "web"), route("Acme/API", "api")))) == []
    assert len(responses.calls) == 0


@responses.activate
def test_a_route_to_a_repository_not_followed_or_not_there_is_an_error_naming_the_route():
    responses.get(f"{API}/repos/acme/other", json=repo_body("acme/other", public=False))
    responses.get(f"{API}/repos/acme/typo", status=404, json={"message": "Not Found"})
    gh = make(("acme/web",))
    found = gh.check_objects(CheckTargets(routes=(route("acme/other", "other"), route("acme/typo", "typo"))))
    assert [(f.level, f.where) for f in found] == [
        ("error", "rules/routes.toml:7: routes.other.team"),
        ("error", "rules/routes.toml:7: routes.typo.team"),
    ]
    assert found[0].message.startswith(
        'repository acme/other is not followed by connector gh (connectors.gh.repositories = ["acme/web"])'
    )
    assert found[1].message.startswith("repository acme/typo does not exist on GitHub or this token cannot see it")
