"""Identities: the keys a person is known by, written one way so the same person always finds one contact.

A phone number becomes E.164 (`+8613800000000`) whatever its spelling; an email is trimmed and
lower-cased; channel ids (openid, unionid, external_userid, shop customer id) are trimmed and kept as
sent, since the platforms that issue them are case-sensitive. A workspace may key people by its own ids
as `custom:<name>` (a member number, a loyalty card).
"""

from __future__ import annotations

import functools
import re

import phonenumbers

from siyu.core.errors import Invalid

IDENTITY_TYPES: tuple[str, ...] = ("phone", "email", "openid", "unionid", "external_userid", "shop_customer_id")
# The names the events API uses for the same keys (docs/events.md), so an event's identity and a
# contact's identity meet on one row.
EVENT_TYPE_ALIASES = {
    "wechat_openid": "openid",
    "wechat_unionid": "unionid",
    "wecom_external_userid": "external_userid",
}
CUSTOM_PREFIX = "custom:"
# Identity.type is 40 characters: "custom:" plus a name of at most 32.
_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_VALUE = 200


def canonical_type(type: str) -> str:
    """The stored name of an identity type, or Invalid naming `identities.type`."""
    name = (type or "").strip()
    name = EVENT_TYPE_ALIASES.get(name, name)
    if name in IDENTITY_TYPES:
        return name
    if name.startswith(CUSTOM_PREFIX) and _CUSTOM_NAME.match(name[len(CUSTOM_PREFIX):]):
        return name
    raise Invalid(
        f"{type!r} is not an identity type: use one of {', '.join(IDENTITY_TYPES)} "
        "or custom:<name> (lowercase letters, digits and _, at most 32)",
        field="type",
        code="invalid",
    )


def is_identity_type(name: str) -> bool:
    """True for a stored identity type name: a built-in one or custom:<name>."""
    return name in IDENTITY_TYPES or (
        name.startswith(CUSTOM_PREFIX) and _CUSTOM_NAME.match(name[len(CUSTOM_PREFIX):]) is not None
    )


def event_identity_type(type: str) -> str:
    """An event's identity type as a contact's: built-in names and aliases kept, other keys become custom."""
    name = EVENT_TYPE_ALIASES.get(type, type)
    if name in IDENTITY_TYPES or name.startswith(CUSTOM_PREFIX):
        return name
    return CUSTOM_PREFIX + name


def _mainland_mobile() -> re.Pattern[str]:
    # The mobile pattern of phonenumbers' own metadata for CN, so the fast path below can't drift from it
    # when the library learns new number ranges.
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None
    assert metadata.mobile is not None
    return re.compile(f"(?:{metadata.mobile.national_number_pattern})")


_MAINLAND_MOBILE = _mainland_mobile()
# "13800000000", "+86 138 0000 0000", "0086-138-0000-0000": an optional +86/0086, then 11 digits with
# spaces or hyphens only between groups. Other spellings take phonenumbers' general path.
_MAINLAND_SPELLING = re.compile(r"(?:(?:\+|00)86[ -]?)?(1\d{2}(?:[ -]?\d){8})")


def normalize_phone(value: str, *, region: str = "CN") -> str:
    """E.164 for a phone number written any usual way; a number without +country is read in `region`."""
    raw = (value or "").strip()
    # Imports of a million rows are mostly mainland mobiles: a regex over phonenumbers' own mobile
    # pattern gives the same E.164 at a fraction of the cost (tests/contacts/test_identities.py proves
    # the two agree). Numbers with +86 are CN whatever the region; bare ones only when read in CN.
    match = _MAINLAND_SPELLING.fullmatch(raw)
    if match is not None and (region == "CN" or raw[:1] in "+0"):
        digits = match[1].replace(" ", "").replace("-", "")
        if _MAINLAND_MOBILE.fullmatch(digits):
            return "+86" + digits
    return _parse_phone(value or "", region)


@functools.lru_cache(maxsize=4096)
def _parse_phone(value: str, region: str) -> str:
    # Cached: a file repeats its landlines and switchboard numbers (an invalid value raises anew).
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise Invalid(f"{value!r} is not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(f"{value!r} is not a valid phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """An email address trimmed and lower-cased, or Invalid naming `email`."""
    email = (value or "").strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise Invalid(f"{value!r} is not an email address", field="email")
    return email


def normalize_identity(type: str, value: str, *, region: str = "CN") -> str:
    """The stored form of one identity's value; raises Invalid naming the identity type's field."""
    kind = canonical_type(type)
    if not isinstance(value, str):
        raise Invalid(f"the {kind} identity is text", field=kind)
    if kind == "phone":
        return normalize_phone(value, region=region)
    if kind == "email":
        return normalize_email(value)
    clean = value.strip()
    if not clean:
        raise Invalid(f"the {kind} identity is empty", field=kind)
    if len(clean) > MAX_VALUE:
        raise Invalid(f"the {kind} identity is longer than {MAX_VALUE} characters", field=kind)
    if "\x00" in clean:
        raise Invalid(f"the {kind} identity contains the NUL character", field=kind)
    return clean


def normalize_pair(type: str, value: str, *, region: str = "CN") -> tuple[str, str]:
    """(stored type, stored value) of one identity."""
    kind = canonical_type(type)
    return kind, normalize_identity(kind, value, region=region)
