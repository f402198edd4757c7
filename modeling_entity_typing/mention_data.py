"""Benchmark files -> one mention record per line of a `datasets` table: `{id, text, start, end, labels}`.

Every reader turns its format into character spans over one text, so the template encoder, the sampler and the
metrics never see a format. Readers stream (one line at a time, `.gz` too); a malformed record raises
`MentionDataError` naming the file, the line and the fix. Formats:

* `"mentions"`: this package's own JSON lines, `{"text", "start", "end", "labels"}` (optional `"id"`,
  `"extra_labels"`); character offsets, end exclusive.
* `"ufet"`: Choi et al. 2018 JSON lines (`left_context_token`, `mention_span`, `right_context_token`, `y_str`).
* `"ali"`: FiveFine's few-shot files (from ALIGNIE): `left_context`, `word`, `right_context`, `y_category`.
* `"afet"`: AFET / Ren et al. JSON lines: `tokens` and `mentions: [{"start", "end", "labels"}]` (token offsets).
* `"tsv"`: `start<TAB>end<TAB>context<TAB>type`, token offsets into the space-separated context (Shimaoka style).
* `"bio"`: CoNLL `token<TAB>tag` lines, blank line between sentences; BIO (`B-x`/`I-x`) or IO tags (Few-NERD).
"""

import gzip
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Literal

import datasets


logger = logging.getLogger(__name__)

MentionFormat = Literal["mentions", "ufet", "ali", "afet", "tsv", "bio"]
FORMATS: tuple[str, ...] = ("mentions", "ufet", "ali", "afet", "tsv", "bio")
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


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


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
    char_start = len(prefix) + (1 if prefix else 0)
    char_end = char_start + len(" ".join(tokens[start:end]))
    return " ".join(tokens), char_start, char_end


# --------------------------------------------------------------------------------------------------- JSON formats
def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                message = f"{path}:{line_number}: not valid JSON ({error.msg}); one object per line."
                raise MentionDataError(message) from None
            if not isinstance(value, dict):
                raise MentionDataError(f"{path}:{line_number}: expected a JSON object, got {type(value).__name__}.")
            yield line_number, value


def _field(obj: dict, key: str, kind: type | tuple, where: str, fmt: str):
    if key not in obj:
        raise MentionDataError(
            f"{where}: missing key {key!r} (keys present: {sorted(obj)}); is this really a {fmt!r} file? "
            f"Formats: {', '.join(FORMATS)}."
        )
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MentionDataError(f"{where}: {key!r} must be {expected}, got {type(value).__name__} {value!r:.60}.")
    return value


def _string_list(obj: dict, key: str, where: str, fmt: str) -> list[str]:
    values = _field(obj, key, list, where, fmt)
    if not all(isinstance(value, str) and value for value in values):
        raise MentionDataError(f"{where}: {key!r} must be a list of non-empty strings, got {values!r:.80}.")
    return values


def _check_span(text: str, start: int, end: int, where: str) -> None:
    if not 0 <= start < end <= len(text):
        raise MentionDataError(
            f"{where}: span ({start}, {end}) is not inside the text of {len(text)} characters; `start` and `end` "
            "are character offsets with 0 <= start < end <= len(text)."
        )
    if not text[start:end].strip():
        raise MentionDataError(f"{where}: the mention text[{start}:{end}] = {text[start:end]!r} is blank.")


def read_mentions_jsonl(path: Path) -> Iterator[dict]:
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        text = _field(obj, "text", str, where, "mentions")
        start, end = _field(obj, "start", int, where, "mentions"), _field(obj, "end", int, where, "mentions")
        _check_span(text, start, end, where)
        labels = _string_list(obj, "labels", where, "mentions")
        extra = _string_list(obj, "extra_labels", where, "mentions") if "extra_labels" in obj else []
        yield _record(str(obj.get("id", line_number)), text, start, end, labels, extra)


def read_ufet(path: Path) -> Iterator[dict]:
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        left = _string_list(obj, "left_context_token", where, "ufet") if obj.get("left_context_token") else []
        right = _string_list(obj, "right_context_token", where, "ufet") if obj.get("right_context_token") else []
        mention = _field(obj, "mention_span", str, where, "ufet")
        if not mention.strip():
            raise MentionDataError(f"{where}: 'mention_span' is blank.")
        text, start, end = _join_tokens([*left, mention, *right], len(left), len(left) + 1)
        labels = _string_list(obj, "y_str", where, "ufet")
        extra = _string_list(obj, "extra_labels", where, "ufet") if "extra_labels" in obj else []
        yield _record(str(obj.get("annot_id", line_number)), text, start, end, labels, extra)


def read_ali(path: Path, right_context: Literal["tokens", "text"] = "tokens") -> Iterator[dict]:
    """FiveFine's few-shot format. `right_context="tokens"` reads the token list, which is correct in every file;
    `"text"` reads `right_context_text` as the reference loader does, which in FiveFine's OntoNotes few-shot *train*
    files is a copy of the left context (a defect of the released data)."""
    if right_context not in ("tokens", "text"):
        raise ValueError(f"`right_context` must be 'tokens' or 'text', got {right_context!r}.")
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        left = _field(obj, "left_context", list, where, "ali")
        if right_context == "tokens":
            right = _field(obj, "right_context", list, where, "ali")
        else:
            right = _field(obj, "right_context_text", str, where, "ali").split()
        mention = _field(obj, "word", str, where, "ali")
        if not mention.strip():
            raise MentionDataError(f"{where}: 'word' (the mention) is blank.")
        text, start, end = _join_tokens([*left, mention, *right], len(left), len(left) + 1)
        labels = _string_list(obj, "y_category", where, "ali")
        yield _record(str(obj.get("ex_id", line_number)), text, start, end, labels)


def read_afet(path: Path) -> Iterator[dict]:
    for line_number, obj in _json_lines(path):
        where = f"{path}:{line_number}"
        tokens = _string_list(obj, "tokens", where, "afet")
        for index, mention in enumerate(_field(obj, "mentions", list, where, "afet")):
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
            labels = _string_list(mention, "labels", here, "afet")
            yield _record(f"{obj.get('senid', line_number)}-{index}", text, char_start, char_end, labels)


# --------------------------------------------------------------------------------------------------- text formats
def read_tsv(path: Path) -> Iterator[dict]:
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
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
    the BIO conversion) -> `/organization/government_governmentagency`; a tag without separator -> `/tag`."""
    parts = re.split(r"[-_]", tag, maxsplit=1)
    if len(parts) == 1:
        return f"/{tag}"
    return f"/{parts[0]}/{parts[1].replace('/', '_')}"


def read_bio(path: Path, label_map: Callable[[str], str] = few_nerd_label) -> Iterator[dict]:
    """CoNLL token/tag files. `B-x` starts a mention, `I-x` continues one of the same type; without prefixes (IO),
    consecutive equal tags form one mention. `label_map` turns a tag's type into a label."""

    def mentions_of(tokens: list[str], tags: list[str], first_line: int) -> Iterator[dict]:
        spans, current = [], None
        for index, tag in enumerate(tags):
            prefix, _, kind = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
            if tag == "O":
                current = None
                continue
            if prefix == "B" or current is None or current[2] != kind:
                current = [index, index + 1, kind]
                spans.append(current)
            else:
                current[1] = index + 1
        for number, (start, end, kind) in enumerate(spans):
            text, char_start, char_end = _join_tokens(tokens, start, end)
            yield _record(f"{first_line}-{number}", text, char_start, char_end, [label_map(kind)])

    tokens, tags, first_line = [], [], None
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    yield from mentions_of(tokens, tags, first_line)
                tokens, tags, first_line = [], [], None
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise MentionDataError(
                    f"{path}:{line_number}: expected 'token<TAB>tag', got {line!r:.80}; sentences are separated by "
                    "blank lines."
                )
            tokens.append(fields[0])
            tags.append(fields[1])
            first_line = first_line or line_number
    if tokens:
        yield from mentions_of(tokens, tags, first_line)


READERS: dict[str, Callable[..., Iterator[dict]]] = {
    "mentions": read_mentions_jsonl,
    "ufet": read_ufet,
    "ali": read_ali,
    "afet": read_afet,
    "tsv": read_tsv,
    "bio": read_bio,
}


def detect_format(path: str | PathLike) -> str:
    """Guess a file's format from its first non-empty line; raises with the formats to choose from."""
    path = Path(path)
    with _open_text(path) as handle:
        line = next((line for line in handle if line.strip()), None)
    if line is None:
        raise MentionDataError(f"{path}: the file is empty.")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        fields = line.rstrip("\n").split("\t")
        if len(fields) == 4:
            return "tsv"
        if len(fields) == 2 or len(line.split()) == 2:
            return "bio"
        obj = None
    if isinstance(obj, dict):
        for fmt, key in (("mentions", "text"), ("ufet", "mention_span"), ("ali", "y_category"), ("afet", "tokens")):
            if key in obj:
                return fmt
    raise MentionDataError(f"{path}:1: cannot tell the format of this file; pass one of {', '.join(FORMATS)}.")


def iter_mentions(path: str | PathLike, format: str | None = None, **reader_options) -> Iterator[dict]:
    """Mention records of one file, read lazily. `format=None` detects it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No data file at {path}.")
    format = format or detect_format(path)
    if format not in READERS:
        raise ValueError(f"Unknown data format {format!r}; choose one of {', '.join(FORMATS)}.")
    return READERS[format](path, **reader_options)


def load_mentions(
    paths: str | PathLike | Sequence[str | PathLike],
    format: str | None = None,
    streaming: bool = False,
    **reader_options,
) -> datasets.Dataset | datasets.IterableDataset:
    """One `datasets` table of mention records from one or more files of a format.

    `streaming=True` gives an `IterableDataset` that reads the files as it is iterated (million-line weak data);
    otherwise the records are read now into an in-memory `Dataset`. `reader_options` go to the format's reader
    (e.g. `right_context="text"` for `"ali"`, `label_map=` for `"bio"`).
    """
    paths = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    if not paths:
        raise ValueError("No data files given.")

    def generate(files: list[str]):
        for file in files:
            yield from iter_mentions(file, format, **reader_options)

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
    dataset: datasets.Dataset, labels: Iterable[str], name: str = "data"
) -> tuple[datasets.Dataset, SchemaReport]:
    """Drop labels outside `labels` (and records left without any), counting each; the report is also logged."""
    allowed = set(labels)
    report = SchemaReport(records=len(dataset))
    keep_labels, keep_extra, keep_rows = [], [], []
    for row, (record_labels, extra) in enumerate(zip(dataset["labels"], dataset["extra_labels"])):
        kept = [label for label in record_labels if label in allowed]
        report.labels_dropped.update(label for label in record_labels if label not in allowed)
        if kept:
            keep_rows.append(row)
            keep_labels.append(kept)
            keep_extra.append([label for label in extra if label in allowed])
        else:
            report.records_dropped += 1
    restricted = dataset.select(keep_rows)
    restricted = restricted.remove_columns(["labels", "extra_labels"])
    restricted = restricted.add_column("labels", keep_labels, feature=FEATURES["labels"])
    restricted = restricted.add_column("extra_labels", keep_extra, feature=FEATURES["extra_labels"])
    report.log(name)
    return restricted, report


def labels_in(dataset: datasets.Dataset) -> list[str]:
    """Labels used by a dataset, in order of first appearance."""
    return list(dict.fromkeys(label for labels in dataset["labels"] for label in labels))


__all__ = [
    "FEATURES",
    "FORMATS",
    "MentionDataError",
    "SchemaReport",
    "detect_format",
    "few_nerd_label",
    "iter_mentions",
    "labels_in",
    "load_mentions",
    "read_afet",
    "read_ali",
    "read_bio",
    "read_mentions_jsonl",
    "read_tsv",
    "read_ufet",
    "restrict_to_labels",
]
