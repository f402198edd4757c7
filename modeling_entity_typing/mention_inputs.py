"""Checks of a mention given by users: a text and a span, as `(start, end)` character offsets or the mention string.

The pipeline, the ONNX typer and `type_prototypes` all take mentions this way, so they share these checks (and their
error messages); this module sits below all of them. So do the checks of a whole batch (every item before the model
runs, bad ones named by index) and of the `errors=` and `batch_size` options, which the pipeline and the ONNX typer
share, and the one rule for text that cannot be encoded, which `load_mentions` applies to data files too.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from transformers import PreTrainedTokenizerBase

from .mention_encoding import mention_token_ids


ERROR_MODES = ("raise", "return")
# How many bad items a batch error spells out in its message; all of them are in `EntityTypingInputError.problems`.
LISTED_PROBLEMS = 20
# Mention strings tokenized per call when a list is checked before the model runs.
CHECK_CHUNK = 1024


class EntityTypingInputError(ValueError, TypeError):
    """Bad items of a batch or stream, named by index; `problems` maps each index to what is wrong with it.

    A subclass of both `ValueError` and `TypeError`, so code that catches either for a single input catches it too.
    """

    def __init__(self, message: str, problems: Mapping[int, str] | None = None):
        super().__init__(message)
        self.problems: dict[int, str] = dict(problems or {})


@dataclass(frozen=True)
class Mention:
    """A checked mention: `text[start:end]`, inside the text and not blank."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class InvalidInput:
    """An input found bad before the model ran, kept in its place so `errors="return"` can report it there."""

    message: str


def check_encodable(text: str, name: str = "`text`") -> None:
    """Raise a `ValueError` naming the lone UTF-16 surrogate in `text`, its character offset and the fix.

    A lone surrogate (U+D800 to U+DFFF, half of a UTF-16 pair) can sit in a Python `str` but is no character: it
    cannot be written as UTF-8, and tokenizers fail on it with a bare `TypeError`. It comes from badly decoded text
    (`errors="surrogateescape"`, a JSON `\\ud800` escape, UTF-16 cut between the two halves of a pair). Strict UTF-8
    encoding fails on nothing else, so this is the whole check; `name` says where the string was found.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} holds the lone surrogate \\u{ord(text[error.start]):04x} at character {error.start} (half of a "
            "UTF-16 pair, not a character, so it cannot be encoded or tokenized); the text was decoded badly: fix "
            "where it comes from, or replace the surrogate with the character it should be."
        ) from None


def check_text(text: Any) -> None:
    """Raise a `TypeError` saying how to fix `text` unless it is a `str`, or a `ValueError` if it cannot be encoded."""
    if isinstance(text, str):
        check_encodable(text)
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


def parse_input(item: Any) -> Mention:
    """Check one input, `{"text", "span"}` or a record `{"text", "start", "end", ...}`, and return its mention.

    Other keys (labels, ids) are ignored, so the records of `load_mentions` can be typed as they are. A key whose
    value is `None` counts as absent (a `datasets` table fills a column's missing values with `None`).
    """
    if not isinstance(item, Mapping):
        if item is None or isinstance(item, (str, bytes, bytearray)):
            if not isinstance(item, str):
                check_text(item)  # not even a text: say what a text is
            raise TypeError(  # a bare text in a batch: say what the dict form is
                f"In a batch each input is a dict, got the bare text {item[:40]!r}: pass "
                "{'text': ..., 'span': (start, end) or 'mention'} (or the keys 'start' and 'end')."
            )
        raise TypeError(
            "Each input must be a text with `span=`, or a dict {'text': ..., 'span': ...} (or with 'start' and "
            f"'end'); got {type(item).__name__}."
        )
    if "text" not in item:
        raise TypeError(
            f"An input dict needs the key 'text', and 'span' or both 'start' and 'end'; got keys {sorted(item)}."
        )
    text = item["text"]
    check_text(text)
    has_span = item.get("span") is not None
    offsets = [key for key in ("start", "end") if item.get(key) is not None]
    if has_span and offsets:
        raise TypeError(
            f"An input dict gives the mention either as 'span' or as 'start' and 'end', not both; got "
            f"span={item['span']!r}, " + ", ".join(f"{key}={item[key]!r}" for key in offsets) + "."
        )
    if offsets:
        if len(offsets) == 1:
            missing = "end" if offsets == ["start"] else "start"
            raise TypeError(f"An input dict with {offsets[0]!r} also needs {missing!r} (end exclusive).")
        span = (item["start"], item["end"])
    else:
        span = item.get("span")
    start, end = resolve_span(text, span)
    return Mention(text, start, end)


def check_inputs(inputs: Sequence[Any], tokenizer: PreTrainedTokenizerBase) -> list[Mention | InvalidInput]:
    """Every input of a batch checked before any model runs: its `Mention`, or `InvalidInput` saying what is wrong.

    Beyond `parse_input`, a mention must keep a word piece for `tokenizer` (one of only control characters or lone
    combining marks has none); the mentions are tokenized in chunks, without their contexts.
    """
    checked: list[Mention | InvalidInput] = []
    for item in inputs:
        try:
            checked.append(parse_input(item))
        except (TypeError, ValueError) as error:
            checked.append(InvalidInput(str(error)))
    positions = [index for index, value in enumerate(checked) if isinstance(value, Mention)]
    for begin in range(0, len(positions), CHECK_CHUNK):
        chunk = positions[begin : begin + CHECK_CHUNK]
        pieces = mention_token_ids(tokenizer, [(m.text, m.start, m.end) for m in (checked[i] for i in chunk)])
        for index, ids in zip(chunk, pieces):
            if not ids:
                mention = checked[index]
                checked[index] = InvalidInput(
                    f"The mention {mention.text[mention.start : mention.end]!r} has no word pieces for this tokenizer "
                    "(it holds only characters the tokenizer drops, such as control characters or lone combining "
                    "marks); choose a span over a word."
                )
    return checked


def problems_of(checked: Sequence[Mention | InvalidInput]) -> dict[int, str]:
    """The bad inputs of a checked batch: index -> what is wrong."""
    return {index: value.message for index, value in enumerate(checked) if isinstance(value, InvalidInput)}


def batch_error(problems: Mapping[int, str], total: int) -> EntityTypingInputError:
    """The error for a batch with bad items: how many are bad, and each one's index and problem (20 spelt out)."""
    lines = [f"  item {index}: {message}" for index, message in list(problems.items())[:LISTED_PROBLEMS]]
    if len(problems) > LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - LISTED_PROBLEMS} more (all of them in `error.problems`).")
    message = (
        f"{len(problems)} of {total} inputs are invalid, so none was typed. Fix them, or pass errors='return' to "
        "type the others and get {'index', 'error'} in place of each bad one:\n" + "\n".join(lines)
    )
    return EntityTypingInputError(message, problems)


def check_errors_mode(errors: Any) -> None:
    """Raise a `ValueError` unless `errors` is `None` (the default, 'raise') or one of `ERROR_MODES`."""
    if errors is not None and errors not in ERROR_MODES:
        raise ValueError(
            f"`errors` must be 'raise' (a bad input stops the call) or 'return' (it comes back as "
            f"{{'index', 'error'}} in its place), got {errors!r}."
        )


def check_batch_size(batch_size: Any, optional: bool = True) -> None:
    """Raise a `ValueError` unless `batch_size` is a positive integer (or, where `optional`, `None`: the default)."""
    if batch_size is None and optional:
        return
    if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer (inputs per model call), got {type(batch_size).__name__} "
            f"{batch_size!r}."
        )


__all__ = [
    "CHECK_CHUNK",
    "ERROR_MODES",
    "LISTED_PROBLEMS",
    "EntityTypingInputError",
    "InvalidInput",
    "Mention",
    "batch_error",
    "check_batch_size",
    "check_encodable",
    "check_errors_mode",
    "check_inputs",
    "check_text",
    "find_mention",
    "parse_input",
    "problems_of",
    "resolve_span",
]
