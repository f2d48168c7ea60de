"""House rules every route must keep, checked over all mounted routers so new routes are covered."""

from __future__ import annotations

import importlib

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from siyu.app import API_ROUTERS, ROOT_ROUTERS
from siyu.core.auth import get_db


def _routes():
    for module, attr in (*API_ROUTERS, *ROOT_ROUTERS):
        for route in getattr(importlib.import_module(module), attr).routes:
            if isinstance(route, APIRoute):
                yield route


def _sessions(dependant: Dependant):
    if dependant.call is get_db:
        yield dependant
    for sub in dependant.dependencies:
        yield from _sessions(sub)


def test_every_route_shares_one_session_that_commits_before_the_answer():
    # A request-scoped get_db beside the function-scoped one would be a second, unbound session whose
    # commit runs after the response: use siyu.core.auth.SessionDep everywhere.
    checked = 0
    for route in _routes():
        scopes = {d.scope for d in _sessions(route.dependant)}
        assert scopes <= {"function"}, f"{route.path}: get_db used with scope {scopes}; use SessionDep"
        checked += 1
    assert checked > 20
