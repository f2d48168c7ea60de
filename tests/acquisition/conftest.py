"""Fixtures of the acquisition tests: those of the channels tests (a bound workspace, running jobs, shared
limits of the test's own) and of the WeCom tests (the local WeCom server, an account pointing at it)."""

from __future__ import annotations

from tests.channels.conftest import _person_resolver, frozen_now, limits, run_jobs, ws  # noqa: F401
from tests.channels.wecom.conftest import account, fake, hooks_app, wecom_url  # noqa: F401
