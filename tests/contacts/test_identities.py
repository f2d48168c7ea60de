"""Identity normalisation: one stored form per real key, whatever the spelling."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.contacts.identities import (
    IDENTITY_TYPES,
    canonical_type,
    event_identity_type,
    normalize_identity,
    normalize_phone,
)
from siyu.core.errors import Invalid

# Valid numbers of several countries, as phonenumbers' own examples.
REGIONS = ("CN", "US", "GB", "ES", "DE", "JP", "HK", "TW", "SG", "MX")
EXAMPLES = [phonenumbers.example_number_for_type(r, phonenumbers.PhoneNumberType.MOBILE) for r in REGIONS]


def spellings(number: phonenumbers.PhoneNumber) -> list[str]:
    intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return [e164, intl, intl.replace(" ", "-"), "00" + e164[1:], f"  {intl}  ", e164.replace("+", "+ ", 1)]


@given(number=st.sampled_from(EXAMPLES), pick=st.integers(0, 5))
def test_any_spelling_of_a_valid_phone_normalises_to_one_e164(number, pick):
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    assert normalize_identity("phone", spellings(number)[pick]) == e164


@given(digits=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_a_mainland_mobile_without_country_code_is_read_in_china(digits):
    number = phonenumbers.parse(digits, "CN")
    if not phonenumbers.is_valid_number(number):
        with pytest.raises(Invalid):
            normalize_identity("phone", digits)
        return
    assert normalize_identity("phone", digits) == "+86" + digits
    assert normalize_identity("phone", f"{digits[:3]} {digits[3:7]} {digits[7:]}") == "+86" + digits
    assert normalize_identity("phone", "+86" + digits) == "+86" + digits


def test_a_national_number_is_read_in_the_given_region():
    assert normalize_identity("phone", "(201) 555-0123", region="US") == "+12015550123"


@pytest.mark.parametrize("bad", ["", "123", "not a phone", "+86 100", "+1 555 0000 0000 0000"])
def test_invalid_phone_names_the_phone_field(bad):
    with pytest.raises(Invalid) as err:
        normalize_identity("phone", bad)
    assert err.value.field == "phone"


@given(user=st.from_regex(r"[A-Za-z0-9._]{1,20}", fullmatch=True), domain=st.sampled_from(["Example.COM", "qq.com"]))
def test_email_is_trimmed_and_lower_cased(user, domain):
    assert normalize_identity("email", f"  {user}@{domain} ") == f"{user}@{domain}".lower()


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com"])
def test_invalid_email_names_the_email_field(bad):
    with pytest.raises(Invalid) as err:
        normalize_identity("email", bad)
    assert err.value.field == "email"


def test_channel_ids_are_trimmed_and_keep_their_case():
    assert normalize_identity("openid", "  oAbC-123 ") == "oAbC-123"
    assert normalize_identity("custom:member_no", " M-0042 ") == "M-0042"
    with pytest.raises(Invalid):
        normalize_identity("unionid", "   ")


def test_types_are_built_in_aliases_or_custom():
    assert set(IDENTITY_TYPES) >= {"phone", "email", "openid", "unionid", "external_userid", "shop_customer_id"}
    assert canonical_type("wechat_unionid") == "unionid"
    assert canonical_type("custom:loyalty_card") == "custom:loyalty_card"
    assert event_identity_type("member_no") == "custom:member_no"
    assert event_identity_type("wecom_external_userid") == "external_userid"
    for bad in ("", "fax", "custom:", "custom:Upper", "custom:" + "x" * 40):
        with pytest.raises(Invalid):
            canonical_type(bad)


# Spellings a brand's export uses for mainland numbers, and near misses that must take the general path.
_PREFIXES = st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "0086 ", "86", "+", "+8", "+860", "0", " "])
_DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=13)


@st.composite
def _spelled(draw: st.DrawFn) -> str:
    digits = draw(st.one_of(st.from_regex(r"1[0-9]{10}", fullmatch=True), _DIGITS))
    # Separators between some digits, as "138 0000 0000" or "138-0000-0000".
    cuts = draw(st.sets(st.integers(1, max(1, len(digits) - 1)), max_size=3))
    sep = draw(st.sampled_from([" ", "-", "  ", ".", "/"]))
    spaced = "".join(sep + d if i in cuts else d for i, d in enumerate(digits))
    return draw(_PREFIXES) + spaced + draw(st.sampled_from(["", " ", "\t"]))


def _by_phonenumbers(value: str, region: str) -> str | None:
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@given(value=_spelled(), region=st.sampled_from(["CN", "CN", "US", "HK", "GB"]))
def test_the_fast_mainland_path_gives_what_phonenumbers_gives(value, region):
    expected = _by_phonenumbers(value, region)

    if expected is None:
        with pytest.raises(Invalid) as err:
            normalize_phone(value, region=region)
        assert err.value.field == "phone"
    else:
        assert normalize_phone(value, region=region) == expected


@given(digits=st.from_regex(r"1[0-9]{10}", fullmatch=True))
def test_every_mainland_range_agrees_with_phonenumbers(digits):
    for spelling in (digits, "+86" + digits, f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}", "0086-" + digits):
        expected = _by_phonenumbers(spelling, "CN")
        if expected is None:
            with pytest.raises(Invalid):
                normalize_phone(spelling)
        else:
            assert normalize_phone(spelling) == expected
