"""Reading the JSON bodies platforms push to siyu's callback routes."""

from __future__ import annotations

import json
from typing import Any

from siyu.core.errors import Invalid


def json_items(body: bytes, *, limit: int, what: str) -> list[dict[str, Any]]:
    """A JSON array of 1 to `limit` objects (a single object is one item); 422 naming `body` otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"the {what} are not JSON", field="body") from exc
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > limit or not all(isinstance(i, dict) for i in items):
        raise Invalid(f"{what} are a JSON array of 1 to {limit} objects", field="body")
    return items
