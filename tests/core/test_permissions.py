"""The permission matrix and API-key scopes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from siyu.core.permissions import MATRIX, MODULES, Role, allows, scope_allows, valid_scope

modules = st.sampled_from(MODULES)
accesses = st.sampled_from(["read", "write"])
scope = st.builds(lambda m, a: f"{m}:{a}", st.sampled_from((*MODULES, "all")), accesses)


def test_every_role_has_a_decision_for_every_module():
    for role in Role:
        assert set(MATRIX[role]) == set(MODULES), role


def test_owner_and_admin_may_do_everything_and_staff_cannot_manage_the_workspace():
    assert all(allows(Role.OWNER, m, "write") and allows(Role.ADMIN, m, "write") for m in MODULES)
    assert not allows(Role.STAFF, "members", "read")
    assert not allows(Role.STAFF, "api_keys", "write")
    assert not allows(Role.ANALYST, "contacts", "write")
    assert allows(Role.ANALYST, "contacts", "read")
    assert not allows(Role.OPERATOR, "api_keys", "read")


@given(st.sampled_from(list(Role)), modules)
def test_write_implies_read_for_roles(role, module):
    if allows(role, module, "write"):
        assert allows(role, module, "read")


@given(st.lists(scope, max_size=5), modules, accesses)
def test_scopes_grant_exactly_what_they_name(scopes, module, access):
    granted = scope_allows(scopes, module, access)
    expected = any(
        s in (f"{module}:write", "all:write") or (s in (f"{module}:read", "all:read") and access == "read")
        for s in scopes
    )
    assert granted == expected


@given(st.text(max_size=20))
def test_only_known_scopes_are_valid(text):
    module, _, access = text.partition(":")
    assert valid_scope(text) == (access in ("read", "write") and (module == "all" or module in MODULES))
