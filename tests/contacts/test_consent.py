"""Consent per channel and may_contact: do-not-contact and withdrawals always win."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.contacts import service
from siyu.contacts.consent import CHANNELS, JOINED_CHANNELS, PURPOSES
from siyu.core.errors import Invalid
from siyu.core.models import AuditEntry, Event
from tests.contacts.conftest import ACTOR


def test_sms_and_email_need_an_explicit_opt_in_for_marketing(db, ws):
    contact = service.create_contact(db, fields={"phone": "13800000030"}, actor=ACTOR)

    assert service.contact_permission(db, contact, "sms", "marketing") == service.Permission(False, "no_opt_in")
    assert service.may_contact(db, contact, "sms", "service")
    service.set_consent(db, contact, channel="sms", status="granted", source="checkout form", proof="order 42",
                        actor=ACTOR)
    assert service.contact_permission(db, contact, "sms") == service.Permission(True, "granted")
    service.set_consent(db, contact, channel="sms", status="withdrawn", source="TD reply", actor=ACTOR)
    assert service.contact_permission(db, contact, "sms", "service").reason == "withdrawn"

    kinds = db.execute(select(Event.type).where(Event.type.like("consent.%")).order_by(Event.id)).scalars().all()
    assert kinds == ["consent.granted", "consent.withdrawn"]
    assert db.execute(select(AuditEntry).where(AuditEntry.action == "contact.consent_withdrawn")).first()


def test_following_or_adding_grants_the_channel_and_unfollowing_withdraws(db, ws):
    contact = service.create_contact(db, identities=[("openid", "o")], actor=ACTOR)
    assert service.contact_permission(db, contact, "wechat_oa").reason == "not_connected"

    service.grant_from_channel(db, contact, "wechat_oa", source="subscribe")
    assert service.may_contact(db, contact, "wechat_oa", "marketing")
    service.withdraw_from_channel(db, contact, "wechat_oa", source="unsubscribe")
    assert not service.may_contact(db, contact, "wechat_oa", "service")
    with pytest.raises(Invalid):
        service.grant_from_channel(db, contact, "sms", source="subscribe")


def test_bad_channel_status_purpose_and_source_name_their_field(db, ws):
    contact = service.create_contact(db, identities=[("openid", "o2")], actor=ACTOR)
    for kwargs, field in [
        ({"channel": "fax", "status": "granted", "source": "x"}, "channel"),
        ({"channel": "sms", "status": "maybe", "source": "x"}, "status"),
        ({"channel": "sms", "status": "granted", "source": " "}, "source"),
    ]:
        with pytest.raises(Invalid) as err:
            service.set_consent(db, contact, actor=ACTOR, **kwargs)
        assert err.value.field == field
    with pytest.raises(Invalid) as err:
        service.may_contact(db, contact, "sms", "spam")
    assert err.value.field == "purpose"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(
    history=st.lists(st.tuples(st.sampled_from(CHANNELS), st.sampled_from(["granted", "withdrawn"])), max_size=6),
    do_not_contact=st.booleans(),
    channel=st.sampled_from(CHANNELS),
    purpose=st.sampled_from(PURPOSES),
)
def test_may_contact_property(db, ws, history, do_not_contact, channel, purpose):
    with db.begin_nested() as savepoint:
        contact = service.create_contact(db, identities=[("openid", "prop")], actor=ACTOR)
        for ch, status in history:
            service.set_consent(db, contact, channel=ch, status=status, source="test", actor=ACTOR)
        service.set_do_not_contact(db, [contact], do_not_contact, actor=ACTOR)
        last = [s for ch, s in history if ch == channel]

        allowed = service.may_contact(db, contact, channel, purpose)

        if do_not_contact or (last and last[-1] == "withdrawn"):
            assert not allowed
        elif last:
            assert allowed
        else:
            assert allowed == (purpose == "service" and channel not in JOINED_CHANNELS)
        savepoint.rollback()
