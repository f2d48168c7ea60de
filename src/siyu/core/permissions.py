"""Roles and what each may do, per module. The matrix is data; docs/permissions.md is generated from it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    STAFF = "staff"


# The areas a permission or an API-key scope is about: the platform's own plus one per product module.
MODULES: tuple[str, ...] = (
    "workspace",  # settings of the workspace
    "members",  # users and roles
    "api_keys",
    "audit",
    "events",
    "jobs",  # background work: see parked and unknown jobs, retry or resolve them
    "contacts",
    "channels",
    "acquisition",
    "messaging",
    "conversations",
    "journeys",
    "promotions",
    "activities",
    "campaigns",
    "analytics",
)

R, W, N = "read", "write", None
_MARKETING = ("contacts", "channels", "acquisition", "messaging", "conversations", "journeys",
              "promotions", "activities", "campaigns")

MATRIX: dict[Role, dict[str, str | None]] = {
    Role.OWNER: {m: W for m in MODULES},
    Role.ADMIN: {m: W for m in MODULES},
    Role.OPERATOR: {
        **{m: W for m in _MARKETING},
        "workspace": R, "members": N, "api_keys": N, "audit": N, "events": W, "jobs": R, "analytics": R,
    },
    Role.ANALYST: {
        **{m: R for m in _MARKETING},
        "workspace": R, "members": N, "api_keys": N, "audit": R, "events": R, "jobs": N, "analytics": W,
    },
    # Staff see their own contacts and conversations only; the contacts module enforces ownership.
    Role.STAFF: {
        **{m: N for m in _MARKETING},
        "contacts": W, "conversations": W, "messaging": R,
        "workspace": R, "members": N, "api_keys": N, "audit": N, "events": N, "jobs": N, "analytics": N,
    },
}

# Only an owner may grant or take away the owner role.
OWNER_ONLY_ACTIONS = frozenset({"grant_owner", "revoke_owner"})


def allows(role: Role | str, module: str, access: str) -> bool:
    """True when `role` may `access` ("read" or "write") `module`."""
    level = MATRIX[Role(role)].get(module)
    if level is None:
        return False
    return access == R or level == W


def scope_allows(scopes: list[str], module: str, access: str) -> bool:
    """True when an API key's scopes cover `access` on `module` ("all:write" covers everything)."""
    wanted = {f"{module}:{access}", f"all:{access}"}
    if access == R:
        wanted |= {f"{module}:write", "all:write"}
    return bool(wanted & set(scopes))


def valid_scope(scope: str) -> bool:
    """True for "<module>:read|write" or "all:read|write"."""
    module, _, access = scope.partition(":")
    return access in (R, W) and (module == "all" or module in MODULES)
