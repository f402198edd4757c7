"""Checks of a mention given by users: a text and a span, as `(start, end)` character offsets or the mention string.

The pipeline, the ONNX typer and `type_prototypes` all take mentions this way, so they share these checks (and their
error messages); this module sits below all of them.
"""

import re
from numbers import Integral
from typing import Any


def check_text(text: Any) -> None:
    """Raise a `TypeError` saying how to fix `text` unless it is a `str`."""
    if isinstance(text, str):
        return
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"`text` must be a str, got {type(text).__name__} (decode it first: text.decode('utf-8')).")
    raise TypeError(f"`text` must be a str, got {'None' if text is None else type(text).__name__}.")


_WORD_CHARACTER = re.compile(r"\w")


def find_mention(text: str, mention: str) -> int:
    """Start of `mention` in `text`: its first whole-word occurrence, else its first occurrence anywhere, else -1.

    Whole word: no letter, digit or `_` touches it on a side where the mention itself starts or ends with one, so
    `"Paris"` in "Parisian artists love Paris." is the second one. Scripts written without spaces (Chinese, Japanese)
    rarely have whole-word occurrences; there the first occurrence is used.
    """
    before = r"(?<!\w)" if _WORD_CHARACTER.match(mention[0]) else ""
    after = r"(?!\w)" if _WORD_CHARACTER.match(mention[-1]) else ""
    match = re.search(before + re.escape(mention) + after, text)
    return match.start() if match else text.find(mention)


def resolve_span(text: Any, span: Any) -> tuple[int, int]:
    """Validate `text` and `span`; return `(start, end)`, or raise a `TypeError`/`ValueError` saying how to fix it."""
    check_text(text)
    if span is None:
        raise TypeError(
            'No mention given: pass `span=(start, end)` (character offsets, end exclusive) or `span="..."`; in a '
            "dict, the key 'span' or the keys 'start' and 'end'."
        )
    if isinstance(span, str):
        if not span.strip():
            raise ValueError("The mention string `span` is empty or whitespace; give the words to type.")
        start = find_mention(text, span)
        if start < 0:
            raise ValueError(f"The mention {span!r} does not occur in the text; pass character offsets instead.")
        return start, start + len(span)
    if (
        not isinstance(span, (tuple, list))
        or len(span) != 2
        or not all(isinstance(x, Integral) and not isinstance(x, bool) for x in span)
    ):
        raise TypeError(f"`span` must be (start, end) character offsets or the mention string, got {span!r}.")
    start, end = int(span[0]), int(span[1])
    if not 0 <= start <= len(text) or not 0 <= end <= len(text):
        raise ValueError(f"`span` {(start, end)} is out of range for a text of {len(text)} characters.")
    if start > end:
        raise ValueError(f"`span` {(start, end)} is reversed: start must come before end (end is exclusive).")
    if start == end:
        raise ValueError(f"`span` {(start, end)} is empty: end is exclusive, so (start, start + length).")
    if not text[start:end].strip():
        raise ValueError(f"`span` {(start, end)} covers only whitespace ({text[start:end]!r}); point it at a word.")
    return start, end


__all__ = ["check_text", "find_mention", "resolve_span"]
