"""The Official Account's XML: callbacks parsed with defusedxml, passive replies written with CDATA.

A callback is one flat `<xml>` element (a few events nest one level: ScanCodeInfo, SendLocationInfo,
whose children are lifted to the top). DOCTYPEs and entities are refused outright: a callback never
needs them, and they are how XML bombs and external-entity reads get in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

# Real callbacks are a few hundred bytes; an encrypted one with a long text stays under 16 KiB.
MAX_BODY_BYTES = 64 * 1024


class BadXml(ValueError):
    """A body that is not a callback's XML (malformed, hostile or of the wrong shape)."""


def parse(body: bytes | str) -> dict[str, str]:
    """The fields of a callback's `<xml>` element; BadXml for anything else."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BadXml("DOCTYPEs and entities are refused") from exc
    except (ParseError, ValueError) as exc:
        raise BadXml("the body is not well-formed XML") from exc
    if root.tag != "xml":
        raise BadXml("the root element is not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        nested = list(child)
        if nested:
            for sub in nested:
                fields.setdefault(sub.tag, (sub.text or "").strip())
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def cdata(value: Any) -> str:
    """A CDATA section holding `value`; a `]]>` inside is split across two sections."""
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _article(content: Mapping[str, Any]) -> str:
    return (
        "<item>"
        f"<Title>{cdata(content.get('title', ''))}</Title>"
        f"<Description>{cdata(content.get('description', ''))}</Description>"
        f"<PicUrl>{cdata(content.get('pic_url', ''))}</PicUrl>"
        f"<Url>{cdata(content.get('url', ''))}</Url>"
        "</item>"
    )


def passive_reply(to_user: str, from_user: str, created: int, content: Mapping[str, Any]) -> str | None:
    """The reply XML of a content (text, image by media_id, link as a one-article news); None when a
    passive reply can't carry it (a mini-program card, an image without a media_id)."""
    kind = content.get("type", "text")
    if kind == "text":
        body = f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(content.get('text', ''))}</Content>"
    elif kind == "image" and content.get("media_id"):
        body = f"<MsgType>{cdata('image')}</MsgType><Image><MediaId>{cdata(content['media_id'])}</MediaId></Image>"
    elif kind in ("link", "news"):
        body = (f"<MsgType>{cdata('news')}</MsgType><ArticleCount>1</ArticleCount>"
                f"<Articles>{_article(content)}</Articles>")
    else:
        return None
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(created)}</CreateTime>{body}</xml>")


def encrypted_reply(encrypted: str, signature: str, timestamp: str, nonce: str) -> str:
    """The safe-mode envelope of an encrypted reply."""
    return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>")
