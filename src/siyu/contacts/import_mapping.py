"""Column mapping of an import: what each column of the file becomes, suggested from the header's words.

A column maps to one target:
- a standard field: `name`, `nickname`, `avatar_url`, `gender`, `birthday`, `city`, `locale`;
- `phone` or `email`: the field and the identity of that type, by which the row finds its contact;
- `identity:<type>`: another key (`identity:openid`, `identity:unionid`, `identity:custom:member_no`);
- `attribute:<key>`: one of the workspace's custom attributes;
- `tags`: tag names separated by commas, each `name` or `group/name`; `tags:<group>`: names in that group;
- `ignore`.

Suggestions read headers in English, Chinese and Spanish ("手机号", "teléfono", "phone") and the names
an export writes, so a file exported by siyu maps back onto itself without a person choosing anything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from siyu.contacts.identities import IDENTITY_TYPES, canonical_type, normalize_identity
from siyu.core.errors import Invalid

FIELDS = ("name", "nickname", "avatar_url", "gender", "birthday", "city", "locale")
IDENTITY_FIELDS = ("phone", "email")
IGNORE = "ignore"
TAGS = "tags"
DEFAULT_TAG_GROUP = "import"
MAX_TAGS_PER_ROW = 50
_TAG_SPLIT = re.compile(r"[,，、;；|]")

# Header words per target, compared after folding (lower case, no accents, spaces or punctuation).
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "customername", "contactname", "姓名", "名字", "客户姓名", "客户名称",
             "客户名", "联系人", "会员姓名", "nombre", "nombrecompleto", "nombreyapellido", "cliente"),
    "nickname": ("nickname", "nick", "wechatnickname", "昵称", "微信昵称", "网名", "apodo", "alias"),
    "phone": ("phone", "mobile", "mobilephone", "cellphone", "cell", "tel", "telephone", "phonenumber",
              "mobilenumber", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "移动电话",
              "telefono", "telefonomovil", "movil", "celular", "numerodetelefono"),
    "email": ("email", "emailaddress", "mail", "e-mail", "邮箱", "电子邮箱", "邮件", "电子邮件", "邮箱地址",
              "correo", "correoelectronico", "email"),
    "city": ("city", "town", "城市", "所在城市", "所在地", "地区", "ciudad", "localidad"),
    "gender": ("gender", "sex", "性别", "genero", "sexo"),
    "birthday": ("birthday", "birthdate", "dateofbirth", "dob", "生日", "出生日期", "出生年月日",
                 "cumpleanos", "fechadenacimiento", "nacimiento"),
    "avatar_url": ("avatar", "avatarurl", "photo", "头像", "头像链接", "foto", "avatarurl"),
    "locale": ("locale", "language", "lang", "语言", "idioma"),
    "tags": ("tags", "tag", "labels", "label", "标签", "客户标签", "etiquetas", "etiqueta"),
    "identity:openid": ("openid", "wechatopenid", "微信openid"),
    "identity:unionid": ("unionid", "wechatunionid", "微信unionid"),
    "identity:external_userid": ("externaluserid", "wecomexternaluserid", "外部联系人id", "企业微信id"),
    "identity:shop_customer_id": ("shopcustomerid", "customerid", "客户id", "客户编号", "会员id", "会员编号",
                                  "idcliente", "iddecliente", "numerodecliente"),
}
_GENDERS = {
    "male": ("male", "m", "man", "男", "男性", "先生", "hombre", "masculino", "h"),
    "female": ("female", "f", "woman", "女", "女性", "女士", "mujer", "femenino"),
    "other": ("other", "其他", "otro", "otra"),
}
_GENDER_OF = {word: key for key, words in _GENDERS.items() for word in words}
_IDENTITY_SPLIT = re.compile(r"[,，;；]")
# The apostrophe an export puts before a cell a spreadsheet would run as a formula (see exports.guard).
_GUARDED = ("'=", "'+", "'-", "'@", "'\t", "'\r")
_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(?:[ T].*)?$")


def fold(header: str) -> str:
    """A header reduced to its letters and digits, lower case and without accents, for matching."""
    text = unicodedata.normalize("NFKD", header.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-./()（）:：*#]+", "", text)


_ALIAS_OF = {fold(word): target for target, words in _ALIASES.items() for word in words}
for _target in (*FIELDS, *IDENTITY_FIELDS, TAGS):
    _ALIAS_OF.setdefault(fold(_target), _target)


def _suggest_one(header: str, attributes: Mapping[str, str]) -> str | None:
    raw = header.strip()
    if raw.startswith(("identity:", "attribute:", "tags:")):
        return raw
    folded = fold(raw)
    if folded in _ALIAS_OF:
        return _ALIAS_OF[folded]
    for key, label in attributes.items():
        if folded in (fold(key), fold(label)):
            return f"attribute:{key}"
    for kind in IDENTITY_TYPES:
        if folded == fold(kind):
            return f"identity:{kind}"
    return None


def is_known_header(header: str) -> bool:
    """True when a header names something a column can map to (used to find the header row)."""
    return _suggest_one(header, {}) is not None


def suggest_mapping(columns: Sequence[str], attributes: Mapping[str, str] | None = None) -> dict[str, str]:
    """A target per column from its header (key -> label of custom `attributes`); `ignore` when unknown.

    Each field or identity goes to the first column that names it; further ones are ignored.
    """
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for column in columns:
        target = _suggest_one(column, attributes or {})
        if target is None or (target in taken and not target.startswith(TAGS)):
            mapping[column] = IGNORE
            continue
        taken.add(target)
        mapping[column] = target
    return mapping


def check_target(target: str, attributes: Mapping[str, Any]) -> str:
    """A mapping target in its stored spelling, or Invalid."""
    target = (target or "").strip()
    if target in (*FIELDS, *IDENTITY_FIELDS, IGNORE, TAGS):
        return target
    if target.startswith("tags:") and target[5:].strip():
        return f"tags:{target[5:].strip()[:80]}"
    if target.startswith("identity:"):
        kind = canonical_type(target[len("identity:"):])
        return kind if kind in IDENTITY_FIELDS else f"identity:{kind}"
    if target.startswith("attribute:"):
        key = target[len("attribute:"):]
        if key not in attributes:
            raise Invalid(f"{key!r} is not an attribute of this workspace's contacts", code="unknown_attribute")
        return target
    raise Invalid(
        f"{target!r} is not something a column can become: a field ({', '.join((*FIELDS, *IDENTITY_FIELDS))}), "
        "identity:<type>, attribute:<key>, tags, tags:<group> or ignore"
    )


def check_mapping(
    mapping: Mapping[str, str], columns: Sequence[str], attributes: Mapping[str, Any]
) -> dict[str, str]:
    """The mapping of every column (unmapped ones ignored), or Invalid naming `mapping.<column>`."""
    if not isinstance(mapping, Mapping):
        raise Invalid("mapping is an object of column: target", field="mapping")
    clean = dict.fromkeys(columns, IGNORE)
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in clean:
            raise Invalid(f"the file has no column {column!r} (it has {', '.join(columns)})",
                          field=f"mapping.{column}")
        if not isinstance(target, str):
            raise Invalid("a column's target is text", field=f"mapping.{column}")
        try:
            stored = check_target(target, attributes)
        except Invalid as exc:
            raise Invalid(exc.message, field=f"mapping.{column}", code=exc.code) from None
        if stored not in (IGNORE,) and not stored.startswith(TAGS):
            if stored in used:
                raise Invalid(f"columns {used[stored]!r} and {column!r} both map to {stored}",
                              field=f"mapping.{column}")
            used[stored] = column
        clean[column] = stored
    if not any(t in IDENTITY_FIELDS or t.startswith("identity:") for t in clean.values()):
        raise Invalid("map at least one column to phone, email or another identity: imported rows find "
                      "their contact by it, so importing the file again adds no one twice", field="mapping")
    return clean


@dataclass
class RowInput:
    """One data row read through the mapping: what it says about its contact, or why it can't be used."""

    row: int
    values: dict[str, str]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[tuple[str, str]] = field(default_factory=list)  # (group, name)
    errors: list[tuple[str | None, str]] = field(default_factory=list)  # (column, message)
    contact_id: int | None = None  # once written
    # Dry runs: the first earlier row of the file naming the same person, when one did.
    earliest: int | None = None


def _gender(value: str) -> str:
    return _GENDER_OF.get(value.strip().lower(), value.strip())


def _birthday(value: str) -> str:
    # Spreadsheets and Chinese forms write 1990/5/1 and 1990年5月1日; the contact field takes ISO dates.
    match = _DATE.match(value)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        except ValueError:
            return value
    return value.strip()


def _tags(value: str, group: str | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in _TAG_SPLIT.split(value):
        item = item.strip()
        if not item:
            continue
        if group is None and "/" in item:
            in_group, _, name = item.partition("/")
            pair = (in_group.strip() or DEFAULT_TAG_GROUP, name.strip())
        else:
            pair = (group or DEFAULT_TAG_GROUP, item)
        if pair[1] and pair not in out:
            out.append(pair)
    return out


def read_row(
    row: int, cells: Sequence[str], columns: Sequence[str], mapping: Mapping[str, str], *, region: str = "CN"
) -> RowInput:
    """A data row's cells turned into identities, fields, attributes and tags; problems kept per column."""
    values = {column: (cells[i] if i < len(cells) else "") for i, column in enumerate(columns)}
    result = RowInput(row=row, values=values)
    extra = [c for c in cells[len(columns):] if c.strip()]
    if extra:
        result.errors.append((None, f"this row has {len(columns) + len(extra)} cells but the header names "
                                    f"{len(columns)} columns"))
    for column in columns:
        target = mapping.get(column, IGNORE)
        raw = values[column].strip()
        if target == IGNORE or not raw:
            continue
        if raw.startswith(_GUARDED):
            raw = raw[1:]
        if "\x00" in raw:
            result.errors.append((column, "contains the NUL character"))
            continue
        if target in IDENTITY_FIELDS or target.startswith("identity:"):
            kind = target.removeprefix("identity:")
            # A cell may hold several keys of one type ("openid1, openid2", as an export writes them).
            for value in _IDENTITY_SPLIT.split(raw) if kind not in IDENTITY_FIELDS else [raw]:
                if not value.strip():
                    continue
                try:
                    pair = (kind, normalize_identity(kind, value, region=region))
                except Invalid as exc:
                    result.errors.append((column, exc.message))
                    break
                if pair not in result.pairs:
                    result.pairs.append(pair)
        elif target.startswith("attribute:"):
            result.attributes[target[len("attribute:"):]] = raw
        elif target == TAGS or target.startswith("tags:"):
            group = target[5:] if target.startswith("tags:") else None
            for pair in _tags(raw, group):
                if len(pair[0]) > 80 or len(pair[1]) > 80:
                    result.errors.append((column, f"tag {pair[1][:80]!r} is longer than 80 characters"))
                elif pair not in result.tags:
                    result.tags.append(pair)
            if len(result.tags) > MAX_TAGS_PER_ROW:
                result.errors.append((column, f"at most {MAX_TAGS_PER_ROW} tags on one row"))
        elif target == "gender":
            result.fields["gender"] = _gender(raw)
        elif target == "birthday":
            result.fields["birthday"] = _birthday(raw)
        else:
            result.fields[target] = raw
    if not result.pairs and not result.errors:
        result.errors.append((None, "this row has no phone, email or other identity to find its contact by"))
    return result


def column_of(field_name: str | None, mapping: Mapping[str, str]) -> str | None:
    """The column a validation error's field came from (`attributes.vip` → the column mapped there)."""
    if not field_name:
        return None
    target = f"attribute:{field_name[len('attributes.'):]}" if field_name.startswith("attributes.") else field_name
    for column, mapped in mapping.items():
        if mapped in (target, f"identity:{target}"):
            return column
    return None
