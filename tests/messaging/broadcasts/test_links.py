"""Links in a message become tracked short links, and only the links."""

from __future__ import annotations

from siyu.messaging import links


def test_links_are_found_in_text_and_cards_without_trailing_punctuation():
    content = {"type": "link", "text": "秋茶上市：https://shop.example.com/a?x=1，快来！Or https://b.example.com/p.",
               "url": "https://shop.example.com/card", "title": "no link here"}
    assert links.links_in(content) == ["https://shop.example.com/a?x=1", "https://b.example.com/p",
                                       "https://shop.example.com/card"]


def test_rewrite_replaces_each_link_with_its_code_and_keeps_the_rest():
    content = {"text": "看看 https://shop.example.com/a ，再看 https://shop.example.com/a 。", "url": "https://x.example.com"}
    out = links.rewrite(content, {"https://shop.example.com/a": "abc", "https://x.example.com": "xyz"})
    short = links.short_url("abc")
    assert out["text"] == f"看看 {short} ，再看 {short} 。"
    assert out["url"] == links.short_url("xyz")
    assert links.rewrite(content, {}) == content
    assert len({links.new_code() for _ in range(100)}) == 100


def test_links_in_an_sms_templates_params_and_a_template_messages_data_are_tracked_too():
    sms = {"type": "sms", "template_code": "SMS_1", "params": {"name": "小美", "link": "https://shop.example.com/s"},
           "text": "小美，详见 https://shop.example.com/s"}
    assert links.links_in(sms) == ["https://shop.example.com/s"]
    out = links.rewrite(sms, {"https://shop.example.com/s": "abc"})
    assert out["params"] == {"name": "小美", "link": links.short_url("abc")}
    assert out["text"] == f"小美，详见 {links.short_url('abc')}"
    assert out["template_code"] == "SMS_1"
    message = {"type": "template", "template_id": "T", "data": {"remark": "https://shop.example.com/t"}}
    assert links.rewrite(message, {"https://shop.example.com/t": "xyz"})["data"] == {"remark": links.short_url("xyz")}
