"""Benchmark files -> one mention record per line of a `datasets` table: `{id, text, start, end, labels}`.

Every reader turns its format into character spans over one text, so the template encoder, the sampler and the
metrics never see a format. Readers stream (one line at a time, `.gz` too); a malformed record raises
`MentionDataError` naming the file, the line and the fix. Files are UTF-8 (a leading byte-order mark is skipped);
a `.gz` name must match gzip content. A JSON record with a key its format does not know is an error, since a misspelt
key would lose its value; `unknown_keys="warn"` reads past such keys with a warning. A key given twice in one object
is an error too (JSON would keep only the last value); a record id used twice in one file is a warning naming the
lines. Formats:

* `"mentions"`: this package's own JSON lines, `{"text", "start", "end", "labels"}` (optional `"id"`,
  `"extra_labels"`); character offsets, end exclusive.
* `"ufet"`: Choi et al. 2018 JSON lines (`left_context_token`, `mention_span`, `right_context_token`, `y_str`).
* `"ali"`: FiveFine's few-shot files (from ALIGNIE): `left_context`, `word`, `right_context`, `y_category`.
* `"afet"`: AFET / Ren et al. JSON lines: `tokens` and `mentions: [{"start", "end", "labels"}]` (token offsets).
* `"tsv"`: `start<TAB>end<TAB>context<TAB>type`, token offsets into the space-separated context (Shimaoka style).
* `"bio"`: CoNLL `token<TAB>tag` lines, blank line between sentences; BIO (`B-x`/`I-x`) or IO tags (Few-NERD).
"""

import codecs
import difflib
import functools
import gzip
import json
import logging
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Literal, TypeVar, get_args

import datasets

from ..mention_inputs import check_encodable


logger = logging.getLogger(__name__)

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
        "labels": datasets.Sequence(datasets.Value("string")),
        "extra_labels": datasets.Sequence(datasets.Value("string")),
    }
)


class MentionDataError(ValueError):
    """A data file that cannot be read as the declared format; the message starts with `file:line:`."""


_GZIP_MAGIC = b"\x1f\x8b"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
UnknownKeys = Literal["error", "warn"]
# Where an "ali" record's right context is read: its token list, or its text field (see `read_ali`).
RightContext = Literal["tokens", "text"]
DatasetOrStream = TypeVar("DatasetOrStream", datasets.Dataset, datasets.IterableDataset)
# How many repeated record ids a file's warning spells out (it counts all of them).
LISTED_REPEATED_IDS = 10


def _is_gzip(path: Path) -> bool:
    """Whether `path` is gzip-compressed; an error naming the fix when its `.gz` name and its content disagree."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    gzipped, named_gz = magic == _GZIP_MAGIC, path.suffix == ".gz"
    if named_gz and not gzipped:
        plain = path.with_suffix("")
        raise MentionDataError(
            f"{path}:1: the name ends in '.gz' but the file is not gzip-compressed (it starts with {magic!r}, not "
            f"{_GZIP_MAGIC!r}); if it is plain text, rename it to {plain.name!r}, else compress it with `gzip` "
            "(a web page saved under a data file's name also looks like this: download it again)."
        )
    if gzipped and not named_gz:
        raise MentionDataError(
            f"{path}:1: the file is gzip-compressed but its name does not end in '.gz'; rename it to "
            f"{path.name + '.gz'!r} (or decompress it with `gunzip -c`)."
        )
    return gzipped


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """`(line_number, line)` of a plain or `.gz` UTF-8 file, read one line at a time.

    Undecodable bytes and a cut-off or corrupt gzip stream raise `MentionDataError` with the line and the fix. Each
    line is held back until the next one is read, so the partial last line of a truncated `.gz` is reported as
    truncation, not as a malformed record. A leading byte-order mark is skipped and `\\r\\n` read as `\\n`.
    """
    gzipped = _is_gzip(path)
    line_number, pending = 0, None
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                if pending is not None:
                    yield pending
                if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                pending = (line_number, _decode(raw, path, line_number))
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise MentionDataError(
            f"{path}:{max(line_number, 1)}: the gzip stream ends early or is corrupt here ({error}); "
            f"{max(line_number - 1, 0)} lines were read before it and the rest of the file is missing. The file is "
            f"truncated or damaged (an interrupted download or copy?): check it with `gzip -t {path}` and fetch it "
            "again."
        ) from None
    if pending is not None:
        yield pending


def _decode(raw: bytes, path: Path, line_number: int) -> str:
    """One line's bytes as text; invalid UTF-8 raises with the line, the column and the fix."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MentionDataError(
            f"{path}:{line_number}: not valid UTF-8 ({error.reason}: byte {raw[error.start : error.start + 1]!r} "
            f"at byte column {error.start + 1}); data files must be UTF-8: re-encode the file, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed`, after checking which encoding it really uses."
        ) from None
    return line[:-2] + "\n" if line.endswith("\r\n") else line


def _check_strings_encodable(value, key: str = "") -> None:
    """Raise `check_encodable`'s error, naming the key path (`'labels'[0]`), for the first string in a parsed JSON
    value that holds a lone UTF-16 surrogate (a `\\ud800` escape without its pair decodes to one)."""
    if isinstance(value, str):
        check_encodable(value, key or "the JSON value")
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        _check_strings_encodable(item, f"{key}[{name!r}]" if key or isinstance(name, int) else repr(name))


def _record(id_: str, text: str, start: int, end: int, labels: Sequence[str], extra_labels=()) -> dict:
    return {
        "id": id_,
        "text": text,
        "start": start,
        "end": end,
        "labels": list(labels),
        "extra_labels": list(extra_labels),
    }


def _join_tokens(tokens: Sequence[str], start: int, end: int) -> tuple[str, int, int]:
    """Text of space-joined tokens and the character span of `tokens[start:end]`."""
    prefix = " ".join(tokens[:start])
    char_start = len(prefix) + (1 if start > 0 else 0)  # a separator follows the prefix, even an empty one
    char_end = char_start + len(" ".join(tokens[start:end]))
    return " ".join(tokens), char_start, char_end


# --------------------------------------------------------------------------------------------------- JSON formats
class _RepeatedKey(Exception):
    """A key given twice in one JSON object (raised while decoding, reported with the file and line)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object as a dict, refusing a key given twice: `json` would keep the last value and drop the other."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        raise _RepeatedKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return obj


@functools.cache
def _json_decoder() -> json.JSONDecoder:
    """One decoder refusing repeated keys (built once: `json.loads` with a hook would build one per line)."""
    return json.JSONDecoder(object_pairs_hook=_unique_keys)


def _parse_json(line: str, path: Path, line_number: int):
    """One line's JSON value; a `MentionDataError` at `path:line_number` saying why when it is not valid JSON, is
    nested too deep to read, repeats a key in an object, or holds a lone surrogate escape."""
    where = f"{path}:{line_number}"
    try:
        value = _json_decoder().decode(line)
        if _SURROGATE_ESCAPE.search(line):
            _check_strings_encodable(value)
    except json.JSONDecodeError as error:
        raise MentionDataError(
            f"{where}: not valid JSON ({error.msg} at column {error.colno}); a JSON-lines file holds one object per "
            "line."
        ) from None
    except RecursionError:
        raise MentionDataError(
            f"{where}: the JSON is nested too deep to read (deeper than Python's recursion limit, "
            f"{sys.getrecursionlimit()}, allows); a mention record nests a few levels of brackets, so this line is "
            "damaged or holds something else: fix or remove it."
        ) from None
    except _RepeatedKey as error:
        raise MentionDataError(
            f"{where}: the key {error.key!r} appears twice in one JSON object; only the last value would be kept "
            "and the other lost silently: remove or rename one of them."
        ) from None
    except ValueError as error:  # `check_encodable`
        raise MentionDataError(f"{where}: {error}") from None
    return value


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """`(line_number, object)` for each non-blank line of a JSON-lines file."""
    for line_number, line in _lines(path):
        if not line.strip():
            continue
        value = _parse_json(line, path, line_number)
        if not isinstance(value, dict):
            raise MentionDataError(f"{path}:{line_number}: expected a JSON object, got {type(value).__name__}.")
        yield line_number, value


class _IdLines:
    """The line of each record id of one file, to warn once, at the end of the file, about ids used more than once.

    Ids name records (a translated mention is matched to its source by id), so a repeated one is reported with its
    lines. A warning, not an error: released files repeat some (FiveFine's `onto_anno_full_10.json` repeats 44
    `annot_id`s). `enabled=False` keeps nothing, for files too large to hold every id (a streamed read).
    """

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled
        self.first_line: dict[str, int] = {}
        self.repeats: dict[str, list[int]] = {}

    def add(self, id_: str, line_number: int) -> str:
        """Record `id_` as seen on `line_number`; returns it."""
        if self.enabled:
            first = self.first_line.setdefault(id_, line_number)
            if first != line_number:
                self.repeats.setdefault(id_, [first]).append(line_number)
        return id_

    def report(self) -> None:
        if not self.repeats:
            return
        shown = "; ".join(
            f"{id_!r} on lines {', '.join(map(str, lines))}"
            for id_, lines in list(self.repeats.items())[:LISTED_REPEATED_IDS]
        )
        more = len(self.repeats) - LISTED_REPEATED_IDS
        logger.warning(
            f"{self.path}: {len(self.repeats)} record id(s) are used by more than one record: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + ". Ids name records (translations are matched to their source by id): make them unique. A record "
            "without an id gets its line number as id, which another record's explicit id can repeat."
        )


def _field(obj: dict, key: str, kind: type | tuple, where: str, fmt: str):
    """`obj[key]`, checked to be of `kind` (never a bool); errors name the key, the type found and the format."""
    if key not in obj:
        close = difflib.get_close_matches(key, [str(present) for present in obj], n=1, cutoff=0.75)
        misspelt = f"; is {close[0]!r} a misspelling of it?" if close else ""
        raise MentionDataError(
            f"{where}: missing key {key!r} (keys present: {sorted(obj)}{misspelt}); is this really a {fmt!r} file? "
            f"Formats: {', '.join(FORMATS)}."
        )
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MentionDataError(f"{where}: {key!r} must be {expected}, got {type(value).__name__} {value!r:.60}.")
    return value


def _string_list(obj: dict, key: str, where: str, fmt: str) -> list[str]:
    """A list of non-empty strings (a sentence's tokens)."""
    values = _field(obj, key, list, where, fmt)
    if not all(isinstance(value, str) and value for value in values):
        raise MentionDataError(f"{where}: {key!r} must be a list of non-empty strings, got {values!r:.80}.")
    return values


def _context_tokens(obj: dict, key: str, where: str, fmt: str) -> list[str]:
    """Context tokens around a mention: a list of strings, `[]` when the key is absent.

    An empty-string token is kept (the released UFET-format OntoNotes and BBN few-shot files write an empty left
    context as `[""]`); it joins as an extra space, and the mention's offsets account for it.
    """
    if key not in obj:
        return []
    values = obj[key]
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise MentionDataError(
            f"{where}: {key!r} must be a list of token strings ([] for no context), got "
            f"{type(values).__name__} {values!r:.60}."
        )
    return values


def _labels(obj: dict, key: str, where: str, fmt: str) -> list[str]:
    """A list of labels: strings that are not blank and carry no surrounding whitespace."""
    values = _field(obj, key, list, where, fmt)
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise MentionDataError(
                f"{where}: {key}[{index}] = {value!r} is not a label; labels are non-blank strings: remove it or "
                "name the type."
            )
        if value != value.strip():
            raise MentionDataError(
                f"{where}: {key}[{index}] = {value!r} has leading or trailing whitespace, which would make it a "
                f"label distinct from {value.strip()!r}; remove the whitespace."
            )
    return values


# Keys each JSON format may carry: those its reader uses, then those the released files hold and the reader ignores.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "mentions": ("text", "start", "end", "labels", "id", "extra_labels"),
    "ufet": (
        *("left_context_token", "mention_span", "right_context_token", "y_str", "annot_id", "extra_labels"),
        *("y_type_str", "y_type", "y"),  # FiveFine's UFET-format OntoNotes files
    ),
    "ali": (
        *("left_context", "word", "right_context", "right_context_text", "y_category", "ex_id"),
        *("left_context_text", "mention_as_list", "fileid"),
    ),
    "afet": ("tokens", "mentions", "senid", "fileid"),
    "afet mention": ("start", "end", "labels"),
}


def _check_keys(obj: dict, fmt: str, where: str, unknown_keys: UnknownKeys, warned: set[str] | None = None) -> None:
    """Unknown keys of a record are an error (a misspelt `"extra_label"` would lose its labels), or with
    `unknown_keys="warn"` a warning the first time each key is met in a file (`warned` remembers them)."""
    if unknown_keys not in ("error", "warn"):
        raise ValueError(f"`unknown_keys` must be 'error' or 'warn', got {unknown_keys!r}.")
    known = KNOWN_KEYS[fmt]
    unknown = [key for key in obj if key not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
        hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    if unknown_keys == "error":
        raise MentionDataError(
            f"{where}: unknown key {', '.join(hints)} in a {fmt!r} record, whose known keys are {list(known)}; "
            "its value would be lost. Rename or remove the key, or pass `unknown_keys='warn'` to read past keys "
            "this reader does not use."
        )
    new = [hint for key, hint in zip(unknown, hints) if warned is None or key not in warned]
    if new:
        logger.warning(f"{where}: ignoring unknown key {', '.join(new)} of this {fmt!r} file (known: {list(known)}).")
        if warned is not None:
            warned.update(unknown)


def _check_span(text: str, start: int, end: int, where: str) -> None:
    if not 0 <= start < end <= len(text):
        raise MentionDataError(
            f"{where}: span ({start}, {end}) is not inside the text of {len(text)} characters; `start` and `end` "
            "are character offsets with 0 <= start < end <= len(text)."
        )
    if not text[start:end].strip():
        raise MentionDataError(f"{where}: the mention text[{start}:{end}] = {text[start:end]!r} is blank.")


def read_mentions_jsonl(path: Path, unknown_keys: UnknownKeys = "error", check_ids: bool = True) -> Iterator[dict]:
    """This package's own JSON lines: `{"text", "start", "end", "labels"}`, optional `"id"`, `"extra_labels"`.

    `check_ids` (each JSON reader): warn, with the lines, about ids used by more than one record of the file.
    """
    warned: set[str] = set()
    ids = _IdLines(path, check_ids)
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        text = _field(obj, "text", str, where, "mentions")
        start, end = _field(obj, "start", int, where, "mentions"), _field(obj, "end", int, where, "mentions")
        _check_span(text, start, end, where)
        labels = _labels(obj, "labels", where, "mentions")
        extra = _labels(obj, "extra_labels", where, "mentions") if "extra_labels" in obj else []
        _check_keys(obj, "mentions", where, unknown_keys, warned)
        yield _record(ids.add(str(obj.get("id", line_number)), line_number), text, start, end, labels, extra)
    ids.report()


def read_ufet(path: Path, unknown_keys: UnknownKeys = "error", check_ids: bool = True) -> Iterator[dict]:
    """Choi et al. 2018 JSON lines: context token lists around `mention_span`, labels in `y_str`."""
    warned: set[str] = set()
    ids = _IdLines(path, check_ids)
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        left = _context_tokens(obj, "left_context_token", where, "ufet")
        right = _context_tokens(obj, "right_context_token", where, "ufet")
        mention = _field(obj, "mention_span", str, where, "ufet")
        if not mention.strip():
            raise MentionDataError(f"{where}: 'mention_span' is blank.")
        text, start, end = _join_tokens([*left, mention, *right], len(left), len(left) + 1)
        labels = _labels(obj, "y_str", where, "ufet")
        extra = _labels(obj, "extra_labels", where, "ufet") if "extra_labels" in obj else []
        _check_keys(obj, "ufet", where, unknown_keys, warned)
        yield _record(ids.add(str(obj.get("annot_id", line_number)), line_number), text, start, end, labels, extra)
    ids.report()


def read_ali(
    path: Path,
    right_context: RightContext = "tokens",
    unknown_keys: UnknownKeys = "error",
    check_ids: bool = True,
) -> Iterator[dict]:
    """FiveFine's few-shot format. `right_context="tokens"` reads the token list, which is correct in every file;
    `"text"` reads `right_context_text` as the reference loader does, which in FiveFine's OntoNotes few-shot *train*
    files is a copy of the left context (a defect of the released data)."""
    if right_context not in get_args(RightContext):
        raise ValueError(f"`right_context` must be one of {get_args(RightContext)}, got {right_context!r}.")
    warned: set[str] = set()
    ids = _IdLines(path, check_ids)
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        _field(obj, "left_context", list, where, "ali")  # required here, unlike UFET's context keys
        left = _context_tokens(obj, "left_context", where, "ali")
        if right_context == "tokens":
            _field(obj, "right_context", list, where, "ali")
            right = _context_tokens(obj, "right_context", where, "ali")
        else:
            right = _field(obj, "right_context_text", str, where, "ali").split()
        mention = _field(obj, "word", str, where, "ali")
        if not mention.strip():
            raise MentionDataError(f"{where}: 'word' (the mention) is blank.")
        text, start, end = _join_tokens([*left, mention, *right], len(left), len(left) + 1)
        labels = _labels(obj, "y_category", where, "ali")
        _check_keys(obj, "ali", where, unknown_keys, warned)
        yield _record(ids.add(str(obj.get("ex_id", line_number)), line_number), text, start, end, labels)
    ids.report()


def read_afet(path: Path, unknown_keys: UnknownKeys = "error", check_ids: bool = True) -> Iterator[dict]:
    """AFET / Ren et al. JSON lines: one sentence's `tokens` and its `mentions` (token offsets, end exclusive).

    A record's id is `fileid/senid-index` (`senid-index` without a `fileid`): `senid` counts the sentences of one
    document, so it repeats across the documents of a file.
    """
    warned: set[str] = set()
    ids = _IdLines(path, check_ids)
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        tokens = _string_list(obj, "tokens", where, "afet")
        mentions = _field(obj, "mentions", list, where, "afet")
        _check_keys(obj, "afet", where, unknown_keys, warned)
        sentence = obj.get("senid", line_number)
        sentence = f"{obj['fileid']}/{sentence}" if "fileid" in obj else sentence
        for index, mention in enumerate(mentions):
            here = f"{where} (mention {index})"
            if not isinstance(mention, dict):
                raise MentionDataError(f"{here}: each mention must be an object with 'start', 'end', 'labels'.")
            start, end = _field(mention, "start", int, here, "afet"), _field(mention, "end", int, here, "afet")
            if not 0 <= start < end <= len(tokens):
                raise MentionDataError(
                    f"{here}: token span ({start}, {end}) is outside the sentence of {len(tokens)} tokens; "
                    "'start'/'end' are token offsets, end exclusive."
                )
            text, char_start, char_end = _join_tokens(tokens, start, end)
            labels = _labels(mention, "labels", here, "afet")
            _check_keys(mention, "afet mention", here, unknown_keys, warned)
            yield _record(ids.add(f"{sentence}-{index}", line_number), text, char_start, char_end, labels)
    ids.report()


# --------------------------------------------------------------------------------------------------- text formats
def read_tsv(path: Path) -> Iterator[dict]:
    """`start<TAB>end<TAB>context<TAB>type` lines, token offsets into the space-separated context."""
    for line_number, line in _lines(path):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        fields = line.split("\t")
        if len(fields) != 4:
            raise MentionDataError(
                f"{where}: expected 4 tab-separated fields (start, end, context, type), got {len(fields)}."
            )
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            message = f"{where}: start and end must be integers, got {fields[0]!r}, {fields[1]!r}."
            raise MentionDataError(message) from None
        tokens = fields[2].split()
        if not 0 <= start < end <= len(tokens):
            raise MentionDataError(
                f"{where}: token span ({start}, {end}) is outside the context of {len(tokens)} tokens."
            )
        if not fields[3].strip():
            raise MentionDataError(f"{where}: the type field is empty.")
        text, char_start, char_end = _join_tokens(tokens, start, end)
        yield _record(str(line_number), text, char_start, char_end, [fields[3].strip()])


def few_nerd_label(tag: str) -> str:
    """Few-NERD tag -> FiveFine label path: `organization-government/governmentagency` (or `_` as separator, as in
    the BIO conversion) -> `/organization/government_governmentagency`; a tag without separator -> `/tag`.

    Raises `ValueError` for a tag with an empty part (`""`, `"-x"`, `"x-"`), which names no type."""
    parts = re.split(r"[-_]", tag, maxsplit=1)
    if not all(part.strip() for part in parts):
        raise ValueError(
            f"tag {tag!r} has an empty type name; Few-NERD tags are 'coarse-fine' (e.g. 'person-actor') or 'coarse'."
        )
    if len(parts) == 1:
        return f"/{tag}"
    return f"/{parts[0]}/{parts[1].replace('/', '_')}"


def read_bio(path: Path, label_map: Callable[[str], str] = few_nerd_label) -> Iterator[dict]:
    """CoNLL token/tag files. `B-x` starts a mention, `I-x` continues one of the same type; without prefixes (IO),
    consecutive equal tags form one mention. `label_map` turns a tag's type into a label; a `ValueError` it raises is
    reported with the file and line."""

    def label_of(kind: str, tag: str, line_number: int) -> str:
        where = f"{path}:{line_number}"
        if not kind:
            raise MentionDataError(
                f"{where}: tag {tag!r} has no type after its prefix; write '{tag}<type>' (e.g. '{tag}person') "
                "or 'O' outside mentions."
            )
        try:
            label = label_map(kind)
        except ValueError as error:
            raise MentionDataError(f"{where}: {error}") from None
        if not isinstance(label, str) or not label.strip() or label != label.strip():
            raise MentionDataError(
                f"{where}: `label_map` turned tag type {kind!r} into {label!r}, which is not a label (labels are "
                "non-blank strings without surrounding whitespace); fix the tag or the `label_map`."
            )
        return label

    def mentions_of(tokens: list[str], tags: list[str], line_numbers: list[int]) -> Iterator[dict]:
        spans, current = [], None
        for index, tag in enumerate(tags):
            prefix, _, kind = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
            if tag == "O":
                current = None
                continue
            if prefix == "B" or current is None or current[2] != kind:
                current = [index, index + 1, kind, label_of(kind, tag, line_numbers[index])]
                spans.append(current)
            else:
                current[1] = index + 1
        for number, (start, end, _, label) in enumerate(spans):
            text, char_start, char_end = _join_tokens(tokens, start, end)
            yield _record(f"{line_numbers[0]}-{number}", text, char_start, char_end, [label])

    tokens, tags, line_numbers = [], [], []
    for line_number, line in _lines(path):
        line = line.rstrip("\n")
        if not line.strip():
            if tokens:
                yield from mentions_of(tokens, tags, line_numbers)
            tokens, tags, line_numbers = [], [], []
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise MentionDataError(
                f"{path}:{line_number}: expected 'token<TAB>tag', got {line!r:.80}; sentences are separated by "
                "blank lines."
            )
        tokens.append(fields[0])
        tags.append(fields[1])
        line_numbers.append(line_number)
    if tokens:
        yield from mentions_of(tokens, tags, line_numbers)


# ------------------------------------------------------------------------------------------------------ the formats
@dataclass(frozen=True)
class DataFormat:
    """A row of `FORMATS`: the format's reader, and what `detect_format` knows it by in a file's first record: a
    JSON-lines format by a key only its records hold, a text format by the shape of its line."""

    read: Callable[..., Iterator[dict]]
    json_key: str | None = None
    line_matches: Callable[[str], bool] | None = None

    @property
    def is_json(self) -> bool:
        """One JSON object per line, so record ids come from the file."""
        return self.json_key is not None


def _is_tsv_line(line: str) -> bool:
    return len(line.rstrip("\n").split("\t")) == 4  # start, end, context, type


def _is_bio_line(line: str) -> bool:
    return len(line.rstrip("\n").split("\t")) == 2 or len(line.split()) == 2  # token and tag


# The one table of data formats, in the order `detect_format` tries them.
FORMATS: dict[str, DataFormat] = {
    "mentions": DataFormat(read_mentions_jsonl, json_key="text"),
    "ufet": DataFormat(read_ufet, json_key="mention_span"),
    "ali": DataFormat(read_ali, json_key="y_category"),
    "afet": DataFormat(read_afet, json_key="tokens"),
    "tsv": DataFormat(read_tsv, line_matches=_is_tsv_line),
    "bio": DataFormat(read_bio, line_matches=_is_bio_line),
}
# A format's name, as a type: a script's `--data_format: MentionFormat | None` lets `HfArgumentParser` check it.
MentionFormat = Literal[tuple(FORMATS)]


def detect_format(path: str | PathLike) -> str:
    """Guess a file's format from its first non-empty line; raises with the formats to choose from."""
    path = Path(path)
    line_number, line = next(((number, line) for number, line in _lines(path) if line.strip()), (0, None))
    if line is None:
        raise MentionDataError(f"{path}: the file is empty.")
    try:
        obj = _parse_json(line, path, line_number)
    except MentionDataError:
        for name, data_format in FORMATS.items():
            if data_format.line_matches is not None and data_format.line_matches(line):
                return name
        if line.lstrip().startswith(("{", "[")):
            raise  # meant as JSON: say why it does not parse, not that the format is unknown
        obj = None
    if isinstance(obj, dict):
        for name, data_format in FORMATS.items():
            if data_format.is_json and data_format.json_key in obj:
                return name
    raise MentionDataError(
        f"{path}:{line_number}: cannot tell the format of this file; pass one of {', '.join(FORMATS)}."
    )


def iter_mentions(
    path: str | PathLike, format: str | None = None, check_ids: bool = True, **reader_options
) -> Iterator[dict]:
    """Mention records of one file, read lazily. `format=None` detects it.

    `check_ids`: at the end of the file, warn (with the lines) about record ids used by more than one record. Only
    the JSON formats read ids from the file (tsv and bio records are numbered by line); `False` keeps no id in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No data file at {path}.")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"Unknown data format {format!r}; choose one of {', '.join(FORMATS)}.")
    if FORMATS[format].is_json:
        reader_options = {**reader_options, "check_ids": check_ids}
    return FORMATS[format].read(path, **reader_options)


def load_mentions(
    paths: str | PathLike | Sequence[str | PathLike],
    format: str | None = None,
    streaming: bool = False,
    **reader_options,
) -> datasets.Dataset | datasets.IterableDataset:
    """One `datasets` table of mention records from one or more files of a format.

    `streaming=True` gives an `IterableDataset` that reads the files as it is iterated (million-line weak data);
    otherwise the records are read now into an in-memory `Dataset`. `reader_options` go to the format's reader
    (e.g. `right_context="text"` for `"ali"`, `label_map=` for `"bio"`). Ids used by more than one record of a file
    are logged as a warning with their lines, except when streaming (which keeps no record of the ids it read); ids
    may repeat across files (records without an id are numbered by line).
    """
    paths = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    if not paths:
        raise ValueError("No data files given.")

    def generate(files: list[str]):
        for file in files:
            yield from iter_mentions(file, format, check_ids=not streaming, **reader_options)

    if streaming:
        return datasets.IterableDataset.from_generator(
            generate, features=FEATURES, gen_kwargs={"files": [str(p) for p in paths]}
        )
    records = list(generate([str(p) for p in paths]))
    if not records:
        raise MentionDataError(f"{', '.join(map(str, paths))}: no mention records found.")
    return datasets.Dataset.from_list(records, features=FEATURES)


# ------------------------------------------------------------------------------------------------ label schema
@dataclass
class SchemaReport:
    """What restricting records to a label set removed: counts, never silent."""

    records: int = 0
    records_dropped: int = 0
    labels_dropped: Counter = field(default_factory=Counter)

    def keep_known(self, record: dict, allowed: Container[str]) -> dict:
        """The record's `labels` and `extra_labels` inside `allowed`; what is dropped is counted, and so is the
        record when no label is left (the caller skips it)."""
        self.records += 1
        kept = [label for label in record["labels"] if label in allowed]
        self.labels_dropped.update(label for label in record["labels"] if label not in allowed)
        if not kept:
            self.records_dropped += 1
        return {"labels": kept, "extra_labels": [label for label in record["extra_labels"] if label in allowed]}

    def log(self, name: str) -> None:
        if self.records_dropped or self.labels_dropped:
            top = ", ".join(f"{label} x{count}" for label, count in self.labels_dropped.most_common(10))
            logger.warning(
                f"{name}: {sum(self.labels_dropped.values())} labels outside the label set were removed ({top}); "
                f"{self.records_dropped} of {self.records} records had no label left and were skipped."
            )
        else:
            logger.info(f"{name}: all {self.records} records use only labels of the label set.")


def restrict_to_labels(
    dataset: DatasetOrStream, labels: Iterable[str], name: str = "data"
) -> tuple[DatasetOrStream, SchemaReport]:
    """Drop labels outside `labels` (and records left without any), counting each (`SchemaReport.keep_known`).

    A `Dataset` is restricted now and the report logged; a stream is restricted as it is read, so its report fills
    up while it is iterated: log it (`report.log(name)`) once the stream has been read.
    """
    allowed = set(labels)
    report = SchemaReport()
    if isinstance(dataset, datasets.IterableDataset):
        kept = dataset.map(lambda record: report.keep_known(record, allowed))
        return kept.filter(lambda record: bool(record["labels"])), report
    records = [
        report.keep_known({"labels": record_labels, "extra_labels": extra}, allowed)
        for record_labels, extra in zip(dataset["labels"], dataset["extra_labels"])
    ]
    keep_rows = [row for row, record in enumerate(records) if record["labels"]]
    restricted = dataset.select(keep_rows)
    restricted = restricted.remove_columns(["labels", "extra_labels"])
    for column in ("labels", "extra_labels"):
        values = [records[row][column] for row in keep_rows]
        restricted = restricted.add_column(column, values, feature=FEATURES[column])
    report.log(name)
    return restricted, report


def read_label_list(path: str | PathLike, repeats: Literal["merge", "error"] = "merge") -> list[str]:
    """The labels of a label file, in file order: one a line, blank lines skipped, anything after a tab ignored (so
    a `label<TAB>phrase` or `label<TAB>count` file reads as its labels); UTF-8, `.gz` too.

    A label listed again is merged into its first line (`repeats="merge"`: FiveFine's vocabulary files repeat
    some), or refused with both lines (`"error"`: where a label's line means something, as in UFET's types file,
    whose leading groups get thresholds of their own).
    """
    path = Path(path)
    first_line: dict[str, int] = {}
    for line_number, line in _lines(path):
        label = line.split("\t")[0].strip()
        if not label:
            continue
        if label in first_line and repeats == "error":
            raise MentionDataError(
                f"{path}:{line_number}: {label!r} is listed again (first on line {first_line[label]}); each label "
                "must appear once: remove one of the two lines."
            )
        first_line.setdefault(label, line_number)
    return list(first_line)


def labels_in(dataset: datasets.Dataset) -> list[str]:
    """Labels used by a dataset, in order of first appearance."""
    return list(dict.fromkeys(label for labels in dataset["labels"] for label in labels))


__all__ = [
    "FEATURES",
    "FORMATS",
    "DataFormat",
    "MentionDataError",
    "MentionFormat",
    "RightContext",
    "SchemaReport",
    "detect_format",
    "few_nerd_label",
    "iter_mentions",
    "labels_in",
    "load_mentions",
    "read_afet",
    "read_ali",
    "read_bio",
    "read_label_list",
    "read_mentions_jsonl",
    "read_tsv",
    "read_ufet",
    "restrict_to_labels",
]
