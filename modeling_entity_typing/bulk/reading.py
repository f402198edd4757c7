"""Input sources of the bulk typer: every source streams `Row`s, one per input mention, numbered from 0.

A row holds a record that `mention_inputs.parse_input` reads (`{"text", "span"}` or `{"text", "start", "end"}`, plus
`"id"`), or, for a row that cannot be read, the reason; either way `where` names it (`file:line`, `file row 7`,
`name[split] row 7`), so that no bad row goes unnamed. Sources:

* `MentionFileSource`: the formats of `load_mentions` (mentions, ufet, ali, afet, tsv, bio), read by the package's own
  readers, which stop at a malformed line; with `recover=True` such a line is reported and reading goes on
  (`RecoveringMentionReader`).
* `JsonLinesSource`, `CsvSource`, `ParquetSource`: a text column and span columns (`Columns`), any other columns
  ignored; read line by line (row group by row group), so that memory does not grow with the file.
* `DatasetSource`: a `datasets` dataset, a folder saved with `save_to_disk`, a folder of data files or a Hub name,
  optionally streamed.

Each source also says what it is (`describe`, for the resume check and the manifest) and, where that is cheap, how
many rows it holds (`count`, for the progress bar's ETA).
"""

import codecs
import csv
import gzip
import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..data.mention_data import FORMATS, MentionDataError, detect_format, iter_mentions


logger = logging.getLogger(__name__)

# Formats of a file of columns; `load_mentions` reads the others (`FORMATS`).
COLUMN_FORMATS = ("jsonl", "csv", "parquet")
INPUT_FORMATS = ("auto", *FORMATS, *COLUMN_FORMATS, "dataset")
# Formats with one record per non-blank line, whose rows can be counted by counting lines.
_LINE_FORMATS = ("mentions", "ufet", "ali", "tsv", "jsonl")
_WHERE = re.compile(r"^(?P<path>.*?):(?P<line>\d+)(?::| \(|$)")
# A recovered reader rewrites its input in pieces of about this size (at least the lines before them, see below).
RECOVERY_CHUNK_BYTES = 4 << 20


class InputError(ValueError):
    """The input cannot be read at all (a missing file, an unknown format, a column that is not there)."""


@dataclass(frozen=True)
class Row:
    """One input row: its number (`index`; `None` for an unreadable stretch of a mention file, which is no row), where
    it came from, and its record or why it could not be read."""

    index: int | None
    where: str
    record: dict[str, Any] | None = None
    error: str | None = None


class Source(Protocol):
    """Where rows come from."""

    def rows(self) -> Iterator[Row]:
        """The rows, in input order, read lazily."""
        ...

    def describe(self) -> dict[str, Any]:
        """What this input is: the same value for the same input, a different one once a file changed."""
        ...

    def count(self) -> int | None:
        """How many rows the input holds, or `None` where counting would cost a pass over it."""
        ...


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _check_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    if not paths:
        raise InputError("No input given: pass --input PATH (a data file, several files, or a dataset).")
    files = [Path(path) for path in paths]
    for path in files:
        if not path.is_file():
            raise InputError(f"No input file at {path}: check the path (a dataset folder or Hub name needs "
                             "--input_format dataset).")  # fmt: skip
    return files


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def count_lines(paths: Iterable[Path]) -> int:
    """Non-blank lines of plain or gzip files, counted in blocks (a million lines take about a second)."""
    total = 0
    for path in paths:
        with _open_binary(path) as handle:
            total += sum(1 for line in handle if line.strip())
    return total


# ------------------------------------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold the text, the mention and the id.

    The mention is `span` (`[start, end]` character offsets or the mention string) or, where that column is absent or
    empty, `start` and `end`. Without an id column a row's id is its number.
    """

    text: str = "text"
    span: str = "span"
    start: str = "start"
    end: str = "end"
    id: str = "id"

    def record(self, raw: Any, index: int, numbers_as_text: bool = False) -> dict[str, Any]:
        """The record of one table row; a `ValueError` says which column is missing or malformed and how to fix it."""
        if not isinstance(raw, dict):
            raise ValueError(f"expected an object with a {self.text!r} column, got {type(raw).__name__}")
        if raw.get(self.text) is None:
            raise ValueError(
                f"no {self.text!r} value (columns present: {sorted(raw)}); name the text column with --text_column"
            )
        record = {"text": raw[self.text], "id": str(raw[self.id]) if raw.get(self.id) is not None else str(index)}
        span = raw.get(self.span)
        if span is not None and span != "":
            record["span"] = _span_from_text(span) if numbers_as_text else span
            return record
        if raw.get(self.start) is None and raw.get(self.end) is None:
            raise ValueError(
                f"no mention: neither a {self.span!r} value nor {self.start!r} and {self.end!r} (columns present: "
                f"{sorted(raw)}); name them with --span_column, or --start_column and --end_column"
            )
        for key, column in (("start", self.start), ("end", self.end)):
            value = raw.get(column)
            record[key] = _offset_from_text(value, column) if numbers_as_text and value is not None else value
        return record


def _offset_from_text(value: str, column: str) -> int:
    """A CSV cell holding a character offset."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{column!r} must be an integer character offset, got {value!r}") from None


def _span_from_text(value: str) -> Any:
    """A CSV span cell: `[start, end]` in JSON, else the mention string itself."""
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


# ------------------------------------------------------------------------------------------------ column sources
class JsonLinesSource:
    """JSON lines (plain or `.gz`) with a text column and span columns; each line is one row, blank lines are none.

    A line that is not valid UTF-8 or JSON, or not an object with the columns, is a bad row named by `file:line`.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], columns: Columns):
        self.paths, self.columns = _check_files(paths), columns

    def rows(self) -> Iterator[Row]:
        index = 0
        for path in self.paths:
            with _open_binary(path) as handle:
                for line_number, raw in enumerate(handle, start=1):
                    if not raw.strip():
                        continue
                    where = f"{path}:{line_number}"
                    try:
                        if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
                            raw = raw[len(codecs.BOM_UTF8) :]
                        record = self.columns.record(json.loads(raw.decode("utf-8")), index)
                        yield Row(index, where, record)
                    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
                        yield Row(index, where, error=_unreadable(error))
                    index += 1

    def describe(self) -> dict[str, Any]:
        return {"format": "jsonl", "files": [_file_identity(p) for p in self.paths], "columns": asdict(self.columns)}

    def count(self) -> int | None:
        return count_lines(self.paths)


def _unreadable(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not valid UTF-8 ({error.reason} at byte {error.start}); re-encode the file as UTF-8"
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg} at column {error.colno}); each line holds one JSON object"
    return str(error)


class CsvSource:
    """CSV files with a header; a row's `where` is `file:line` (the line it ends on). Offsets are read as integers,
    a span cell as `[start, end]` in JSON or as the mention string."""

    def __init__(self, paths: Sequence[str | os.PathLike], columns: Columns):
        self.paths, self.columns = _check_files(paths), columns

    def rows(self) -> Iterator[Row]:
        index = 0
        for path in self.paths:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                try:
                    for raw in reader:
                        where = f"{path}:{reader.line_num}"
                        try:
                            yield Row(index, where, self.columns.record(raw, index, numbers_as_text=True))
                        except ValueError as error:
                            yield Row(index, where, error=str(error))
                        index += 1
                except (UnicodeDecodeError, csv.Error) as error:
                    raise InputError(f"{path}:{reader.line_num}: cannot read the CSV file ({error}).") from None

    def describe(self) -> dict[str, Any]:
        return {"format": "csv", "files": [_file_identity(p) for p in self.paths], "columns": asdict(self.columns)}

    def count(self) -> int | None:
        return None  # a quoted cell may span lines


class ParquetSource:
    """Parquet files, read one record batch at a time; a row's `where` is `file row N` (0-based in the file)."""

    batch_rows = 4096

    def __init__(self, paths: Sequence[str | os.PathLike], columns: Columns):
        self.paths, self.columns = _check_files(paths), columns

    def rows(self) -> Iterator[Row]:
        import pyarrow.parquet as pq

        index = 0
        for path in self.paths:
            table = pq.ParquetFile(path)
            wanted = [name for name in asdict(self.columns).values() if name in table.schema_arrow.names]
            in_file = 0
            for batch in table.iter_batches(batch_size=self.batch_rows, columns=wanted):
                for raw in batch.to_pylist():
                    where = f"{path} row {in_file}"
                    try:
                        yield Row(index, where, self.columns.record(raw, index))
                    except ValueError as error:
                        yield Row(index, where, error=str(error))
                    index, in_file = index + 1, in_file + 1

    def describe(self) -> dict[str, Any]:
        return {"format": "parquet", "files": [_file_identity(p) for p in self.paths], "columns": asdict(self.columns)}

    def count(self) -> int | None:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(path).metadata.num_rows for path in self.paths)


class DatasetSource:
    """A `datasets` dataset: a folder written by `save_to_disk`, a folder of data files or a Hub name (with
    `config` and `split`), streamed with `streaming=True`; a row's `where` is `name[split] row N`."""

    batch_rows = 1024

    def __init__(
        self,
        name: str,
        columns: Columns,
        split: str | None = None,
        config: str | None = None,
        streaming: bool = False,
    ):
        self.name, self.columns, self.split, self.config, self.streaming = name, columns, split, config, streaming
        self.dataset = self._load()

    def _load(self):
        import datasets

        path = Path(self.name)
        saved = path.is_dir() and any((path / marker).is_file() for marker in ("state.json", "dataset_dict.json"))
        try:
            if saved:
                loaded = datasets.load_from_disk(str(path))
            else:
                loaded = datasets.load_dataset(self.name, self.config, streaming=self.streaming)
        except (FileNotFoundError, ValueError, ConnectionError) as error:
            raise InputError(
                f"Cannot load the dataset {self.name!r} ({type(error).__name__}: {error}). Give a folder written by "
                "`save_to_disk`, a folder of data files, or a Hub dataset name (with --dataset_config if it has "
                "several); offline, only datasets already in the cache load."
            ) from None
        if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
            if self.split is None and len(loaded) == 1:
                self.split = next(iter(loaded))
            if self.split not in loaded:
                raise InputError(
                    f"The dataset {self.name!r} has the splits {sorted(loaded)}; choose one with --split."
                )
            loaded = loaded[self.split]
        elif self.split is not None and saved:
            logger.info(f"{self.name} is a single split; --split {self.split} names it.")
        return loaded

    def rows(self) -> Iterator[Row]:
        label = f"{self.name}[{self.split}]" if self.split else self.name
        index = 0
        for batch in self.dataset.iter(batch_size=self.batch_rows):
            names = list(batch)
            for values in zip(*batch.values()):
                where = f"{label} row {index}"
                try:
                    yield Row(index, where, self.columns.record(dict(zip(names, values)), index))
                except ValueError as error:
                    yield Row(index, where, error=str(error))
                index += 1

    def describe(self) -> dict[str, Any]:
        return {
            "format": "dataset",
            "name": self.name,
            "config": self.config,
            "split": self.split,
            "fingerprint": getattr(self.dataset, "_fingerprint", None),
            "columns": asdict(self.columns),
        }

    def count(self) -> int | None:
        try:
            return len(self.dataset)
        except TypeError:  # streamed
            splits = getattr(getattr(self.dataset, "info", None), "splits", None) or {}
            split = splits.get(self.split) if self.split else None
            return getattr(split, "num_examples", None) or None


# ---------------------------------------------------------------------------------------------- mention formats
class MentionFileSource:
    """Files of a `load_mentions` format, read by its own reader (`iter_mentions`): a row is a mention record (an
    `afet` or `bio` line may hold several), its `where` is `file record N`. A malformed line ends the rows with an
    unreadable row at `file:line`, unless `recover`, where reading goes on after it (`RecoveringMentionReader`)."""

    def __init__(self, paths: Sequence[str | os.PathLike], format: str | None = None, recover: bool = False):
        self.paths = _check_files(paths)
        self.formats = [format or detect_format(path) for path in self.paths]
        self.recover = recover

    def rows(self) -> Iterator[Row]:
        index = 0
        for path, format in zip(self.paths, self.formats):
            reader = RecoveringMentionReader(path, format) if self.recover else _PlainMentionReader(path, format)
            in_file = 0
            for record in reader:
                if isinstance(record, Unreadable):
                    yield Row(None, record.where, error=record.error)
                    continue
                yield Row(index, f"{path} record {in_file}", {k: record[k] for k in ("id", "text", "start", "end")})
                index, in_file = index + 1, in_file + 1
            if reader.stopped:
                return

    def describe(self) -> dict[str, Any]:
        files = [{**_file_identity(path), "format": fmt} for path, fmt in zip(self.paths, self.formats)]
        return {"format": "mentions", "files": files}

    def count(self) -> int | None:
        if all(fmt in _LINE_FORMATS for fmt in self.formats):
            return count_lines(self.paths)
        return None


def _where_of(error: MentionDataError, path: Path) -> tuple[str, int | None]:
    """`(file:line, line)` of a reader's error, whose message starts with the file and line."""
    match = _WHERE.match(str(error))
    if match is None:
        return str(path), None
    return f"{path}:{match['line']}", int(match["line"])


@dataclass(frozen=True)
class Unreadable:
    """A malformed line of a mention file: where (`file:line`) and what is wrong."""

    where: str
    error: str


class _PlainMentionReader:
    """Each record of the file, then an `Unreadable` if a line is malformed (after which the package's reader cannot
    go on: `stopped`)."""

    def __init__(self, path: Path, format: str):
        self.path, self.format, self.stopped = path, format, False

    def __iter__(self) -> Iterator[dict | Unreadable]:
        try:
            yield from iter_mentions(self.path, self.format, check_ids=False)
        except MentionDataError as error:
            self.stopped = True
            yield Unreadable(_where_of(error, self.path)[0], str(error))


class RecoveringMentionReader:
    """The package's reader of a mention format, going on past malformed lines: each is reported (an `Unreadable`)
    and left out, with every record of it (`afet`: all mentions of the line; `bio`: the whole sentence).

    The reader stops at the first malformed line, so the file is read in pieces of about `RECOVERY_CHUNK_BYTES`
    (cut at blank lines for `bio`, whose sentences end there) written to a scratch file after as many blank lines as
    come before them, so that line numbers and the ids made from them are the file's. A piece with a malformed line
    is read again with that line blanked; records of a piece are given out once it reads cleanly, after its errors.
    Memory holds one piece; a gzip stream that ends early is no line: it raises `InputError`.
    """

    stopped = False  # it never stops before the end of the file

    def __init__(self, path: Path, format: str, chunk_bytes: int = RECOVERY_CHUNK_BYTES):
        self.path, self.format, self.chunk_bytes = path, format, chunk_bytes

    def __iter__(self) -> Iterator[dict | Unreadable]:
        with tempfile.TemporaryDirectory(prefix="entity-typing-recover-") as scratch:
            for first_line, lines in self._pieces():
                yield from self._read_piece(Path(scratch) / "piece", first_line, lines)

    def _pieces(self) -> Iterator[tuple[int, list[bytes]]]:
        """`(number of the first line, lines)` of each piece of the file."""
        first_line, lines, size = 1, [], 0
        try:
            with _open_binary(self.path) as handle:
                for raw in handle:
                    lines.append(raw)
                    size += len(raw)
                    boundary = self.format != "bio" or not raw.strip()
                    if boundary and size >= max(self.chunk_bytes, first_line):
                        yield first_line, lines
                        first_line, lines, size = first_line + len(lines), [], 0
        except (EOFError, OSError, zlib.error) as error:  # a cut or corrupt gzip stream: the rest is unknown
            raise InputError(
                f"{self.path}:{first_line + len(lines)}: the gzip stream ends early or is corrupt here ({error}); "
                f"the rest of the file cannot be read: check it with `gzip -t {self.path}` and fetch it again."
            ) from None
        if lines:
            yield first_line, lines

    def _read_piece(self, scratch: Path, first_line: int, lines: list[bytes]):
        bad: dict[int, str] = {}
        while True:
            text = [b"\n" if first_line + offset in bad else line for offset, line in enumerate(lines)]
            scratch.write_bytes(b"\n" * (first_line - 1) + b"".join(text))
            try:
                records = list(iter_mentions(scratch, self.format, check_ids=False))
                break
            except MentionDataError as error:
                where, line = _where_of(error, self.path)
                if line is None or not first_line <= line < first_line + len(lines) or line in bad:
                    raise
                message = str(error).replace(str(scratch), str(self.path))
                for number in self._lines_to_drop(line, first_line, lines):
                    bad[number] = ""
                bad[line] = message
        for line in sorted(number for number, message in bad.items() if message):
            yield Unreadable(f"{self.path}:{line}", bad[line] + self._dropped_note())
        yield from records

    def _lines_to_drop(self, line: int, first_line: int, lines: list[bytes]) -> range:
        """The lines left out for a malformed `line`: itself, or in `bio` its whole sentence."""
        if self.format != "bio":
            return range(line, line + 1)
        start = end = line - first_line
        while start > 0 and lines[start - 1].strip():
            start -= 1
        while end + 1 < len(lines) and lines[end + 1].strip():
            end += 1
        return range(first_line + start, first_line + end + 1)

    def _dropped_note(self) -> str:
        if self.format == "bio":
            return " (its sentence was left out)"
        if self.format == "afet":
            return " (every mention of the line was left out)"
        return ""


# ------------------------------------------------------------------------------------------------------- choosing
@dataclass(frozen=True)
class InputSpec:
    """What `--input` and its options name."""

    paths: tuple[str, ...]
    format: str = "auto"
    columns: Columns = Columns()
    split: str | None = None
    dataset_config: str | None = None
    streaming: bool = False


def open_source(spec: InputSpec, recover: bool) -> Source:
    """The source that reads `spec`; `recover`: mention files go on after a malformed line."""
    if spec.format not in INPUT_FORMATS:
        raise InputError(f"Unknown input format {spec.format!r}; choose one of {', '.join(INPUT_FORMATS)}.")
    format = spec.format if spec.format != "auto" else detect_input_format(spec.paths, spec.columns)
    if format == "dataset":
        if len(spec.paths) != 1:
            raise InputError(f"A dataset is one name or folder; got {len(spec.paths)} inputs.")
        return DatasetSource(spec.paths[0], spec.columns, spec.split, spec.dataset_config, spec.streaming)
    if format == "jsonl":
        return JsonLinesSource(spec.paths, spec.columns)
    if format == "csv":
        return CsvSource(spec.paths, spec.columns)
    if format == "parquet":
        return ParquetSource(spec.paths, spec.columns)
    return MentionFileSource(spec.paths, format, recover)


def detect_input_format(paths: Sequence[str], columns: Columns = Columns()) -> str:
    """The format of `paths`: by suffix (`.parquet`, `.csv`), a dataset for a folder or a name that is no file,
    JSON lines with the text column as `jsonl`, else the `load_mentions` format `detect_format` finds."""
    first = Path(paths[0])
    if first.is_dir() or (not first.exists() and len(paths) == 1 and not first.suffix):
        return "dataset"
    _check_files(paths)
    suffixes = "".join(first.suffixes[-2:]).lower()
    if suffixes.endswith(".parquet"):
        return "parquet"
    if suffixes.endswith((".csv", ".csv.gz")):
        return "csv"
    if _first_object_has(first, columns.text):
        return "jsonl"
    try:
        format = detect_format(first)
    except MentionDataError as error:
        raise InputError(f"{error} Or name it with --input_format ({', '.join(INPUT_FORMATS[1:])}).") from None
    return "jsonl" if format == "mentions" else format


def _first_object_has(path: Path, key: str) -> bool:
    with _open_binary(path) as handle:
        for raw in handle:
            if raw.strip():
                try:
                    value = json.loads(raw.decode("utf-8-sig"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    return False
                return isinstance(value, dict) and key in value
    return False


__all__ = [
    "COLUMN_FORMATS",
    "INPUT_FORMATS",
    "Columns",
    "CsvSource",
    "DatasetSource",
    "InputError",
    "InputSpec",
    "JsonLinesSource",
    "MentionFileSource",
    "ParquetSource",
    "RecoveringMentionReader",
    "Row",
    "Unreadable",
    "Source",
    "count_lines",
    "detect_input_format",
    "open_source",
]
