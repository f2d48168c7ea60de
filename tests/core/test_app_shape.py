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


def _calls(dependant: Dependant):
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_every_console_write_checks_its_csrf_token():
    from siyu.console.shell import checked_form
    from siyu.console.views import login, router

    writes = [r for r in router.routes if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(writes) > 5
    for route in writes:
        if route.endpoint is login:
            continue  # no session yet: the sign-in form has its own double-submit token, tested on its own
        assert checked_form in set(_calls(route.dependant)), f"{route.path} takes a form without its CSRF check"
