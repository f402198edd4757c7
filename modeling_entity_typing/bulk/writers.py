"""The bulk typer's output rows and the two file formats they are written in: JSON lines and Parquet.

One output row per typed mention: its input row number (`row`), its `id`, the mention and its span, the labels and
their scores (same order: by descending score) and the pipeline's truncation flags. Both formats write and read the
same rows; Parquet stores scores as float32, which is what the model computed.
"""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol


OutputFormatName = Literal["jsonl", "parquet"]
ROW_KEYS = ("row", "id", "mention", "span", "labels", "scores", "truncated", "mention_truncated")


class RowWriter(Protocol):
    """Appends output rows to one file."""

    def write(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class OutputFormat(Protocol):
    """A file format of output rows."""

    name: str
    suffix: str

    def writer(self, path: Path) -> RowWriter: ...

    def read(self, path: Path) -> Iterator[dict[str, Any]]: ...


class _JsonLinesWriter:
    def __init__(self, path: Path):
        self.handle = open(path, "w", encoding="utf-8")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self.handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

    def close(self) -> None:
        self.handle.close()


class JsonLinesOutput:
    """One JSON object per line, keys in `ROW_KEYS` order."""

    name, suffix = "jsonl", ".jsonl"

    def writer(self, path: Path) -> RowWriter:
        return _JsonLinesWriter(path)

    def read(self, path: Path) -> Iterator[dict[str, Any]]:
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{line_number}: not an output row ({error.msg}).") from None


def _parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("row", pa.int64()),
            ("id", pa.string()),
            ("mention", pa.string()),
            ("span", pa.list_(pa.int64(), 2)),
            ("labels", pa.list_(pa.string())),
            ("scores", pa.list_(pa.float32())),
            ("truncated", pa.bool_()),
            ("mention_truncated", pa.bool_()),
        ]
    )


class _ParquetWriter:
    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        self.schema = _parquet_schema()
        self.writer = pq.ParquetWriter(path, self.schema)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        if rows:
            self.writer.write_table(pa.Table.from_pylist(list(rows), schema=self.schema))

    def close(self) -> None:
        self.writer.close()


class ParquetOutput:
    """A Parquet table with one row group per written batch; read back a batch at a time."""

    name, suffix = "parquet", ".parquet"

    def writer(self, path: Path) -> RowWriter:
        return _ParquetWriter(path)

    def read(self, path: Path) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()


OUTPUT_FORMATS: dict[str, OutputFormat] = {"jsonl": JsonLinesOutput(), "parquet": ParquetOutput()}


def output_format_of(path: str | Path) -> OutputFormat:
    """The format of an output file, by its suffix."""
    for output_format in OUTPUT_FORMATS.values():
        if str(path).endswith(output_format.suffix):
            return output_format
    raise ValueError(f"{path} is neither a .jsonl nor a .parquet file of predictions.")


__all__ = ["OUTPUT_FORMATS", "ROW_KEYS", "JsonLinesOutput", "OutputFormat", "ParquetOutput", "output_format_of"]
