"""Archive search: Chinese and English words, every message in and out indexed, filters, highlights,
pagination, the substring fallback, and one workspace never seeing another's messages."""

from __future__ import annotations

from sqlalchemy import insert, select

from siyu.channels import service as channels
from siyu.conversations import search
from siyu.conversations.models import Message, MessageSearch
from siyu.core.tenancy import bind_workspace


def test_chinese_and_english_words_find_their_messages_with_highlights(db, say):
    coupon = say("你好，我想领取优惠券，谢谢")
    refund = say("订单还没到，申请退款", openid="o-2")
    say("Hello, where is my PARCEL?", openid="o-3")

    hits, _, fuzzy = search.search(db, q="优惠券")
    assert [h.message.id for h in hits] == [coupon.message_id]
    assert not fuzzy
    assert str(hits[0].highlighted) == "你好，我想领取<mark>优惠券</mark>，谢谢"

    assert [h.message.id for h in search.search(db, q="退款")[0]] == [refund.message_id]
    english = search.search(db, q="parcel")[0]
    assert [str(h.highlighted) for h in english] == ["Hello, where is my <mark>PARCEL</mark>?"]
    assert search.search(db, q="优惠券 退款")[0] == []


def test_outbound_messages_and_full_width_text_are_found(db, say, account):
    got = say("hi")
    sent = channels.queue_send(db, account=account, contact_id=got.contact_id, origin="test",
                               content={"type": "text", "text": "您的ＶＩＰ优惠券已发放"}, idempotency_key="o1")
    hits = search.search(db, q="vip", direction="out")[0]
    assert [h.message.id for h in hits] == [sent.id]
    assert str(hits[0].highlighted) == "您的<mark>ＶＩＰ</mark>优惠券已发放"
    assert search.search(db, q="vip", direction="in")[0] == []


def test_filters_and_cursor_pagination(db, say):
    ids = [say(f"第{i}次 询问 优惠券", openid=f"o-{i % 2}").message_id for i in range(5)]
    first, cursor, _ = search.search(db, q="优惠券", limit=2)
    second, cursor2, _ = search.search(db, q="优惠券", limit=2, cursor=cursor)
    third, end, _ = search.search(db, q="优惠券", limit=2, cursor=cursor2)
    assert [h.message.id for h in first + second + third] == sorted(ids, reverse=True)
    assert end is None
    contact = db.get(Message, ids[0]).contact_id
    assert {h.message.contact_id for h in search.search(db, q="优惠券", contact_id=contact)[0]} == {contact}


def test_substring_fallback_finds_what_the_words_missed(db, say):
    got = say("订单号ABC123456已发货")
    hits, _, fuzzy = search.search(db, q="c1234")
    assert fuzzy
    assert [h.message.id for h in hits] == [got.message_id]
    assert str(hits[0].highlighted) == "订单号AB<mark>C1234</mark>56已发货"


def test_a_message_written_around_the_orm_is_indexed_by_the_sweep(db, say, ws):
    say("hello")
    db.execute(insert(Message).values(workspace_id=ws.id, channel="recording", direction="in", msg_type="text",
                                      text="导入的聊天记录 退款", content={}, status="received"))
    assert search.search(db, q="导入")[2]  # only the substring fallback sees it
    assert search.index_missing(db) == 1
    hits, _, fuzzy = search.search(db, q="导入")
    assert [h.message.text for h in hits] == ["导入的聊天记录 退款"]
    assert not fuzzy
    assert search.index_missing(db) == 0


def test_another_workspace_never_sees_the_messages(db, say, make_workspace):
    say("机密 优惠券")
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    assert search.search(db, q="优惠券")[0] == []
    assert search.search(db, q="机密")[0] == []
    assert db.execute(select(MessageSearch)).all() == []


def test_a_query_asks_for_the_long_word_not_its_parts_too():
    from siyu.conversations import text

    assert text.query_terms("优惠券") == ["优惠券"]
    assert text.query_terms("退款 ＲＥＦＵＮＤ") == ["退款", "refund"]
