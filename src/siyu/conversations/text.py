"""Text as search and sensitive words see it: NFKC (full width → half width), case folded, and tokens.

`normalise` keeps, for each normalised character, the index of the original character it came from,
so a match found in normalised text can be shown (highlighted, quoted) in the text as written.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import rjieba

MAX_TOKEN = 64


def normalise(text: str) -> tuple[str, list[int]]:
    """The normalised text and, per character of it, the index of its source character in `text`."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold(ch)
        out.append(folded)
        where.extend([i] * len(folded))
    return "".join(out), where


@lru_cache(maxsize=4096)
def _fold(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).casefold()


def plain(text: str) -> str:
    """The normalised text alone."""
    return "".join(_fold(ch) for ch in text)


def tokens(text: str) -> list[str]:
    """Search tokens of a text: rjieba's search cut (a long word and its parts), words only."""
    seen: list[str] = []
    for token in rjieba.cut_for_search(plain(text)):
        token = token.strip()
        if token and len(token) <= MAX_TOKEN and any(ch.isalnum() for ch in token):
            seen.append(token)
    return seen


def query_terms(text: str) -> list[str]:
    """The tokens a search must match: the query's tokens without those inside a longer one.

    The search cut gives a long word and its parts (`优惠券`, `优惠`); a message indexed with the long
    word has its parts too, so asking for them adds nothing but misleads the planner, which takes the
    parts for independent words and expects far fewer matches than there are.
    """
    found = list(dict.fromkeys(tokens(text)))
    return [t for t in found if not any(t != other and t in other for other in found)]


def document(text: str) -> str:
    """The token string stored for a message (each token once, in order)."""
    return " ".join(dict.fromkeys(tokens(text)))


def spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the (already normalised) terms occur in `text`, as merged [start, end) ranges of `text`."""
    norm, where = normalise(text)
    found: list[tuple[int, int]] = []
    for term in terms:
        if not term:
            continue
        start = norm.find(term)
        while start >= 0:
            end = start + len(term)
            found.append((where[start], where[end - 1] + 1))
            start = norm.find(term, end)
    found.sort()
    merged: list[tuple[int, int]] = []
    for s, e in found:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
