"""The output folder of a bulk run: shards written atomically, the run record that makes a run resumable, the merge.

Layout of `OUT/` while a run goes on, and once it is complete:

    OUT/shards/run.json                  what is being typed (model, options, input) and the fast path chosen
    OUT/shards/shard-000042.jsonl        the typed rows of input rows 42 * shard_rows ... (or .parquet)
    OUT/shards/shard-000042.json         its record: rows, skipped rows and why, seconds; written last
    OUT/predictions.jsonl                all shards, in row order (or .parquet)
    OUT/manifest.json                    model, options, counts, skipped rows, throughput; `shards/` is then removed

Every file is written beside its name and renamed into place, so a kill at any moment leaves whole files or none: a
shard counts as done only when its record exists, and a rerun of the same command types the others. A folder holding
anything else, or another run, is refused unless `overwrite` (`output_paths`).
"""

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output_paths import prepare_output_dir
from .writers import OutputFormat


logger = logging.getLogger(__name__)

SHARDS_DIR = "shards"
RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.json"
PREDICTIONS_STEM = "predictions"
ALLOW_OVERWRITE = "--overwrite (`overwrite=True`)"
MERGE_BATCH_ROWS = 1024


class OutputConflict(FileExistsError):
    """The output folder holds something this run must not replace unasked."""


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(partial)` to a file beside `path`, flushed to disk, then renamed onto `path`: whole or absent."""
    partial = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        write(partial)
        _fsync(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, value: Any) -> None:
    write_atomically(path, lambda partial: partial.write_text(json.dumps(value, indent=2, ensure_ascii=False)))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def differences(stored: Any, current: Any, prefix: str = "") -> list[str]:
    """`key: stored -> current` for each leaf where two fingerprints differ."""
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(stored) | set(current), key=str):
            found += differences(stored.get(key), current.get(key), f"{prefix}{key}.")
        return found
    if stored != current:
        return [f"{prefix.rstrip('.')}: {json.dumps(stored)[:80]} -> {json.dumps(current)[:80]}"]
    return []


@dataclass
class ShardSink:
    """What one shard receives while it is typed: output rows (written as they come) and skipped rows."""

    writer: Any
    end_row: int  # one past the last input row of the shard seen so far
    typed: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self.writer.write(rows)
        self.typed += len(rows)

    def skip(self, entries: Sequence[dict[str, Any]]) -> None:
        self.skipped.extend(entries)


@dataclass(frozen=True)
class ShardRecord:
    """A finished shard: its number, the input rows it covers `[first_row, end_row)`, how many were typed, the rows
    skipped (with where and why), and the seconds spent."""

    shard: int
    first_row: int
    end_row: int
    typed: int
    skipped: list[dict[str, Any]]
    seconds: float
    process: int
    session: str = ""

    @classmethod
    def read(cls, path: Path) -> "ShardRecord":
        return cls(**json.loads(path.read_text()))


class OutputFolder:
    """The folder `OUT` of one bulk run (module docstring): its checks, run record, shards and final files."""

    def __init__(self, path: str | os.PathLike, output_format: OutputFormat):
        self.path = Path(path)
        self.format = output_format
        self.shards = self.path / SHARDS_DIR
        self.run_file = self.shards / RUN_FILE
        self.manifest_file = self.path / MANIFEST_FILE
        self.predictions = self.path / f"{PREDICTIONS_STEM}{output_format.suffix}"

    # ------------------------------------------------------------------------------------------- the run record
    def stored_run(self) -> dict[str, Any] | None:
        """The record of the run this folder holds (in progress, or complete: its manifest), or None."""
        for path in (self.run_file, self.manifest_file):
            if path.is_file():
                try:
                    stored = json.loads(path.read_text())
                except json.JSONDecodeError:
                    continue
                if isinstance(stored, dict) and "fingerprint" in stored:
                    return stored
        return None

    def is_complete(self) -> bool:
        return self.manifest_file.is_file() and self.predictions.is_file() and not self.run_file.is_file()

    def prepare(self, fingerprint: dict[str, Any], overwrite: bool, keep: str | None = None) -> dict[str, Any] | None:
        """Check the folder before anything is written; returns the stored run record when this run resumes it.

        An absent or empty folder starts a run. One holding this very run (same fingerprint) resumes it. Anything
        else (another run, other files) is refused with what differs, unless `overwrite`, which empties it first.
        `keep` (the model folder) is never emptied.
        """
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"--output {self.path} is a file; the output is a folder: choose a folder path.")
        stored = self.stored_run() if self.path.is_dir() else None
        if stored is not None and stored["fingerprint"] == fingerprint:
            self._remove_partials()
            if self.is_complete():  # a kill while the shards were being removed leaves some
                shutil.rmtree(self.shards, ignore_errors=True)
            return stored
        if stored is not None and not overwrite:
            changed = "\n  ".join(differences(stored["fingerprint"], fingerprint)[:20])
            raise OutputConflict(
                f"{self.path} holds a run of another model, input or options; nothing was written. What differs:\n"
                f"  {changed}\nRun the same command as before to resume it, choose another --output, or pass "
                f"{ALLOW_OVERWRITE} to replace it."
            )
        try:
            prepare_output_dir(self.path, overwrite, ALLOW_OVERWRITE, keep=keep)
        except FileExistsError as error:
            raise OutputConflict(str(error)) from None
        return None

    def start(self, record: dict[str, Any]) -> None:
        """Write (or rewrite) the run record of this run."""
        self.shards.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.run_file, record)

    def _remove_partials(self) -> None:
        """Delete what a killed run left half written (files are only ever renamed into place whole)."""
        for folder in (self.path, self.shards):
            if folder.is_dir():
                for partial in folder.glob(".*.partial-*"):
                    shutil.rmtree(partial) if partial.is_dir() else partial.unlink()

    # ------------------------------------------------------------------------------------------------- shards
    def shard_data(self, index: int) -> Path:
        return self.shards / f"shard-{index:06d}{self.format.suffix}"

    def shard_record(self, index: int) -> Path:
        return self.shards / f"shard-{index:06d}.json"

    def is_done(self, index: int) -> bool:
        return self.shard_record(index).is_file() and self.shard_data(index).is_file()

    def done_shards(self) -> set[int]:
        done = set()
        for path in self.shards.glob("shard-*.json") if self.shards.is_dir() else ():
            index = int(path.stem.partition("-")[2])
            if self.shard_data(index).is_file():
                done.add(index)
        return done

    @contextmanager
    def shard(
        self, index: int, first_row: int, process: int, session: str, clock: Callable[[], float]
    ) -> Iterator[ShardSink]:
        """Write shard `index` as it is typed; it is renamed into place, then its record written, only when the block
        ends without an error. On an error nothing of it stays."""
        data = self.shard_data(index)
        partial = data.with_name(f".{data.name}.partial-{uuid.uuid4().hex[:8]}")
        writer = self.format.writer(partial)
        sink, started = ShardSink(writer, first_row), clock()
        try:
            yield sink
            writer.close()
            _fsync(partial)
            os.replace(partial, data)
        except BaseException:
            writer.close()
            partial.unlink(missing_ok=True)
            raise
        seconds = clock() - started
        record = ShardRecord(index, first_row, sink.end_row, sink.typed, sink.skipped, seconds, process, session)
        write_json_atomically(self.shard_record(index), record.__dict__)

    def records(self, count: int) -> list[ShardRecord]:
        """The records of shards `0 .. count - 1`; a missing one is an error naming it (a gap in the output)."""
        missing = [index for index in range(count) if not self.is_done(index)]
        if missing:
            raise RuntimeError(
                f"{len(missing)} of {count} shards of {self.path} are not written (first: {missing[:5]}); run the "
                "same command again to type them."
            )
        return [ShardRecord.read(self.shard_record(index)) for index in range(count)]

    # -------------------------------------------------------------------------------------------------- merge
    def merge(self, records: Sequence[ShardRecord]) -> int:
        """Join the shards into the predictions file, checking that every input row is typed or skipped exactly once
        (row numbers strictly increasing, each shard's rows all accounted for); returns the rows written. Rows are
        copied a batch at a time: memory does not grow with the shards."""
        written = 0

        def write(partial: Path) -> None:
            nonlocal written
            writer = self.format.writer(partial)
            try:
                last = -1
                for record in records:
                    numbers, batch = [], []
                    for row in self.format.read(self.shard_data(record.shard)):
                        numbers.append(row["row"])
                        batch.append(row)
                        if len(batch) == MERGE_BATCH_ROWS:
                            writer.write(batch)
                            batch = []
                    writer.write(batch)
                    _check_shard(record, numbers, last)
                    written += len(numbers)
                    last = max([last, *numbers[-1:]])
            finally:
                writer.close()

        write_atomically(self.predictions, write)
        return written

    def finish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest, then remove the shards: the folder now holds the finished run only."""
        write_json_atomically(self.manifest_file, manifest)
        self.run_file.unlink()  # first: from here the folder counts as complete, whatever a kill leaves of the rest
        shutil.rmtree(self.shards, ignore_errors=True)


def _check_shard(record: ShardRecord, numbers: Sequence[int], last: int) -> None:
    """Every row of `record`'s range typed (`numbers`, in file order) or skipped exactly once, after the rows of the
    shards before it."""
    numbers = list(numbers)
    skipped = [entry["row"] for entry in record.skipped if entry.get("row") is not None]
    covered = sorted(numbers + skipped)
    expected = list(range(record.first_row, record.end_row))
    out_of_order = numbers != sorted(set(numbers)) or (numbers and numbers[0] <= last)
    if len(numbers) != record.typed or covered != expected or out_of_order:
        raise RuntimeError(
            f"Shard {record.shard} does not cover its input rows {record.first_row}..{record.end_row - 1} exactly "
            f"once ({len(numbers)} typed, {len(skipped)} skipped; its record says {record.typed} typed). Its files "
            "were changed after they were written: delete them and run the same command to type the shard again."
        )


__all__ = [
    "MANIFEST_FILE",
    "OutputConflict",
    "OutputFolder",
    "ShardRecord",
    "ShardSink",
    "differences",
    "write_atomically",
    "write_json_atomically",
]
