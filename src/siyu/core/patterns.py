"""Regular expressions that users write (keyword replies, sensitive-word rules), run with RE2.

RE2 matches in time linear in the text whatever the pattern, so no pattern and no message can stall the
worker or a callback the way a backtracking engine can (`(a+)+$`, `.*.*.*x` on a long message). What it
gives up: backreferences (`\\1`) and lookarounds (`(?=…)`, `(?<!…)`), refused when a rule is saved with
the engine's own message. `\\d`, `\\w`, `\\s` and `\\b` are ASCII: the text is NFKC-normalised before
matching, so full-width digits and letters are ASCII by then; `\\p{Han}` matches Chinese characters.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any, Protocol

import re2

from siyu.core.errors import Invalid

MAX_PATTERN = 200
# What `compiled` raises for a pattern RE2 can't take.
Error: type[Exception] = re2.error


class Found(Protocol):
    def start(self) -> int: ...

    def end(self) -> int: ...


class Pattern(Protocol):
    """The part of a compiled RE2 pattern siyu uses (positions are in characters, as with `re`)."""

    def search(self, text: str) -> Found | None: ...

    def finditer(self, text: str) -> Any: ...


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's Invalid, not a line on stderr
    options.case_sensitive = not ignore_case
    return options


@lru_cache(maxsize=1024)
def compiled(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """The pattern, NFKC-normalised like the text it is matched against, compiled; `re2.error` if RE2
    can't take it."""
    return re2.compile(unicodedata.normalize("NFKC", pattern), _options(ignore_case))  # type: ignore[no-any-return]


def check(pattern: str, *, field: str, ignore_case: bool = False, max_length: int = MAX_PATTERN) -> Pattern:
    """The compiled pattern, or Invalid (code `bad_pattern`) naming `field` when it is too long, isn't a
    pattern RE2 takes, or matches empty text (it would match every message)."""
    if len(pattern) > max_length:
        raise Invalid(f"a pattern is at most {max_length} characters", field=field, code="bad_pattern")
    try:
        found = compiled(pattern, ignore_case=ignore_case)
    except Error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise Invalid(f"not a valid pattern: {reason}", field=field, code="bad_pattern") from None
    if found.search("") is not None:
        raise Invalid("the pattern matches empty text, so every message", field=field, code="bad_pattern")
    return found
