"""The custom menu's published rules, checked before the platform sees a menu: at most 3 top buttons of
at most 16 bytes (4 Chinese characters), at most 5 sub-buttons each of at most 60 bytes, and per type
the field that type needs (click: key; view: url; miniprogram: appid, pagepath and a fallback url)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from siyu.core.errors import Invalid

MAX_TOP, MAX_SUB = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES, KEY_BYTES, URL_BYTES = 16, 60, 128, 1024
# What each button type needs besides its name.
NEEDS: dict[str, tuple[str, ...]] = {
    "click": ("key",), "view": ("url",), "miniprogram": ("url", "appid", "pagepath"),
    "scancode_push": ("key",), "scancode_waitmsg": ("key",), "pic_sysphoto": ("key",),
    "pic_photo_or_album": ("key",), "pic_weixin": ("key",), "location_select": ("key",),
    "media_id": ("media_id",), "article_id": ("article_id",), "article_view_limited": ("article_id",),
}
LIMITS = {"key": KEY_BYTES, "url": URL_BYTES, "appid": 32, "pagepath": 1024, "media_id": 128, "article_id": 128}


def _text(value: Any, where: str, max_bytes: int) -> str:
    text = str(value or "").strip() if isinstance(value, str | int) else ""
    if not text or len(text.encode()) > max_bytes:
        raise Invalid(f"1 to {max_bytes} bytes", field=where)
    return text


def _action(button: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = button.get("type")
    if kind not in NEEDS:
        raise Invalid(f"type is one of {', '.join(NEEDS)}", field=f"{where}.type")
    out: dict[str, Any] = {"type": kind}
    for name in NEEDS[kind]:
        out[name] = _text(button.get(name), f"{where}.{name}", LIMITS[name])
        if name == "url" and not out[name].startswith(("http://", "https://")):
            raise Invalid("an http:// or https:// URL", field=f"{where}.url")
    return out


def clean_menu(menu: Mapping[str, Any]) -> dict[str, Any]:
    """The menu as the platform takes it; Invalid naming the first wrong field (`button.1.sub_button.0.name`)."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_TOP:
        raise Invalid(f"a menu has 1 to {MAX_TOP} buttons", field="button")
    cleaned = []
    for i, button in enumerate(buttons):
        where = f"button.{i}"
        if not isinstance(button, Mapping):
            raise Invalid("a button is an object", field=where)
        top: dict[str, Any] = {"name": _text(button.get("name"), f"{where}.name", TOP_NAME_BYTES)}
        subs = button.get("sub_button")
        if subs:
            if not isinstance(subs, list) or len(subs) > MAX_SUB:
                raise Invalid(f"at most {MAX_SUB} sub-buttons", field=f"{where}.sub_button")
            top["sub_button"] = []
            for j, sub in enumerate(subs):
                sub_where = f"{where}.sub_button.{j}"
                if not isinstance(sub, Mapping):
                    raise Invalid("a button is an object", field=sub_where)
                name = _text(sub.get("name"), f"{sub_where}.name", SUB_NAME_BYTES)
                top["sub_button"].append({"name": name, **_action(sub, sub_where)})
        else:
            top.update(_action(button, where))
        cleaned.append(top)
    return {"button": cleaned}
