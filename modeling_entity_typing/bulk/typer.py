"""The batching engine of the bulk typer: the labels rule, a window of rows typed in length-sorted batches, and the
loop that types the shards of this process and writes each one whole.

The rows of a shard are cut into windows of `window_rows` consecutive rows; within a window the mentions are sorted by
their length in word pieces (stable), batched, scored, and put back in row order. Batches therefore hold mentions of
about one length, so little of a batch is padding; and a window never crosses a shard, so a shard typed again after a
kill is typed in the very same batches and gives the very same numbers.
"""

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from transformers import PreTrainedTokenizerBase

from ..contract import EntityTypingConfig, MentionEncoder
from ..decision import check_rule_options, decide, own_thresholds, resolve_rule
from ..mention_encoding import EncodedMention
from ..mention_inputs import InvalidInput, Mention, check_inputs
from .reading import Row
from .shards import OutputFolder


logger = logging.getLogger(__name__)

OnError = Literal["stop", "skip"]


class Scorer(Protocol):
    """Probabilities `(mentions, labels)` (float32) of templated mentions; `name` says which path computes them."""

    name: str

    def __call__(self, encoded: Sequence[EncodedMention]) -> torch.Tensor: ...


class BadRowError(ValueError):
    """A row that cannot be typed, under `on_error="stop"`; `entry` is its `{"row", "where", "error"}`."""

    def __init__(self, message: str, entry: dict[str, Any]):
        super().__init__(message)
        self.entry = entry


@dataclass(frozen=True)
class LabelRule:
    """Which labels come back per mention, resolved once as the pipeline resolves them (`decision.resolve_rule`):
    the model's own rule and thresholds (per label where `config.label_thresholds` sets them), or `top_k`,
    `threshold` and `decision` as given."""

    labels: tuple[str, ...]
    decision: str
    threshold: float | torch.Tensor | None
    top_k: int | None

    @classmethod
    def resolve(
        cls,
        config: EntityTypingConfig,
        labels: Sequence[str],
        own_labels: bool,
        threshold: float | None = None,
        top_k: int | None = None,
        decision: str | None = None,
    ) -> "LabelRule":
        """The rule for `labels`: the model's own (`own_labels`, whose thresholds may be per label) or labels given at
        call time (the config's one threshold)."""
        check_rule_options(threshold, top_k, decision)
        default = own_thresholds(config.threshold, config.label_thresholds, labels) if own_labels else config.threshold
        rule, cut = resolve_rule(decision, threshold, top_k, config.decision, default)
        return cls(tuple(labels), rule, cut, top_k)

    def __call__(self, probabilities: torch.Tensor) -> tuple[list[str], list[float]]:
        if self.decision == "threshold" and self.threshold is None and self.top_k < probabilities.numel():
            # `top_k` alone: what `decide` computes (the top k of every score), without its copy of all 10k scores
            # first, which costs ten times the top k itself
            best = probabilities.float().topk(self.top_k)
            return [self.labels[index] for index in best.indices.tolist()], best.values.tolist()
        chosen = decide(probabilities, self.labels, decision=self.decision, threshold=self.threshold, top_k=self.top_k)
        return [item["label"] for item in chosen], [item["score"] for item in chosen]

    def describe(self) -> dict[str, Any]:
        threshold = self.threshold
        if isinstance(threshold, torch.Tensor):
            threshold = {"per_label": True, "min": float(threshold.min()), "max": float(threshold.max())}
        return {"decision": self.decision, "threshold": threshold, "top_k": self.top_k, "num_labels": len(self.labels)}


class WindowTyper:
    """Types one window of rows: checks each row as the pipeline does (`check_inputs`), templates the good ones in one
    tokenizer call, scores them in length-sorted batches of `batch_size`, and returns the output rows in row order
    with the rows that could not be typed (`{"row", "where", "error"}`)."""

    def __init__(
        self,
        scorer: Scorer,
        encoder: MentionEncoder,
        tokenizer: PreTrainedTokenizerBase,
        rule: LabelRule,
        batch_size: int,
    ):
        self.scorer, self.encoder, self.tokenizer = scorer, encoder, tokenizer
        self.rule, self.batch_size = rule, batch_size

    def __call__(self, rows: Sequence[Row]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        readable = [row for row in rows if row.record is not None]
        checked = dict(
            zip((row.index for row in readable), check_inputs([row.record for row in readable], self.tokenizer))
        )
        skipped, good = [], []
        for row in rows:
            value = checked.get(row.index) if row.record is not None else InvalidInput(row.error or "unreadable")
            if isinstance(value, Mention):
                good.append((row, value))
            else:
                skipped.append({"row": row.index, "where": row.where, "error": value.message})
        encoded = self._encode(good, skipped)
        return self._type(encoded), sorted(skipped, key=_row_order)

    def _encode(
        self, good: list[tuple[Row, Mention]], skipped: list[dict]
    ) -> list[tuple[Row, Mention, EncodedMention]]:
        """Template the good mentions in one call; should that fail, one by one, so that the bad one is named."""
        try:
            encodings = self.encoder.encode_batch([(m.text, m.start, m.end) for _, m in good])
            return [(row, mention, e) for (row, mention), e in zip(good, encodings)]
        except (TypeError, ValueError):
            encoded = []
            for row, mention in good:
                try:
                    encoded.append((row, mention, self.encoder.encode(mention.text, mention.start, mention.end)))
                except (TypeError, ValueError) as error:
                    skipped.append({"row": row.index, "where": row.where, "error": str(error)})
            return encoded

    def _type(self, encoded: list[tuple[Row, Mention, EncodedMention]]) -> list[dict[str, Any]]:
        order = sorted(range(len(encoded)), key=lambda position: len(encoded[position][2].input_ids))
        results: list[dict[str, Any] | None] = [None] * len(encoded)
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin : begin + self.batch_size]
            probabilities = self.scorer([encoded[position][2] for position in batch])
            for position, row_probabilities in zip(batch, probabilities):
                row, mention, e = encoded[position]
                labels, scores = self.rule(row_probabilities)
                results[position] = {
                    "row": row.index,
                    "id": row.record.get("id", str(row.index)),
                    "mention": mention.text[mention.start : mention.end],
                    "span": [mention.start, mention.end],
                    "labels": labels,
                    "scores": scores,
                    "truncated": e.truncated,
                    "mention_truncated": e.mention_truncated,
                }
        return results


def _row_order(entry: dict[str, Any]) -> tuple[bool, int]:
    return entry["row"] is None, entry["row"] or 0


def shards_of(rows: Iterable[Row], shard_rows: int) -> Iterator[tuple[int, Iterator[Row]]]:
    """`(shard number, its rows)` in input order; an unreadable stretch (no row number) goes with the shard of the
    row before it."""
    current = 0

    def shard(row: Row) -> int:
        nonlocal current
        if row.index is not None:
            current = row.index // shard_rows
        return current

    return itertools.groupby(rows, shard)


def windows_of(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while window := list(itertools.islice(iterator, size)):
        yield window


@dataclass
class LoopSummary:
    """What one process's loop saw: the input's rows and shards, and what it typed itself."""

    rows: int = 0
    shards: int = 0
    typed_here: int = 0
    shards_typed_here: int = 0


class ShardLoop:
    """Types the shards of this process (`rank` of `world`) that are not done yet, each written whole
    (`OutputFolder.shard`); rows of other shards are read past. With `on_error="stop"`, the first row that cannot be
    typed raises `BadRowError` before anything of its shard is written; with `"skip"` it is listed in the shard's
    record and the others are typed."""

    def __init__(
        self,
        typer: Callable[[Sequence[Row]], tuple[list[dict], list[dict]]],
        folder: OutputFolder,
        shard_rows: int,
        window_rows: int,
        on_error: OnError = "stop",
        rank: int = 0,
        world: int = 1,
        progress: Callable[[int], None] | None = None,
        session: str = "",
        clock: Callable[[], float] = time.perf_counter,
    ):
        if on_error not in ("stop", "skip"):
            raise ValueError(f"`on_error` must be 'stop' or 'skip', got {on_error!r}.")
        self.typer, self.folder, self.on_error = typer, folder, on_error
        self.shard_rows, self.window_rows, self.rank, self.world = shard_rows, window_rows, rank, world
        self.progress = progress or (lambda count: None)
        self.session, self.clock = session, clock

    def run(self, rows: Iterable[Row]) -> LoopSummary:
        summary, done = LoopSummary(), self.folder.done_shards()
        for index, shard_rows in shards_of(rows, self.shard_rows):
            summary.shards = index + 1
            first_row = index * self.shard_rows
            if index % self.world != self.rank or index in done:
                seen = sum(1 for row in shard_rows if row.index is not None)
                summary.rows = max(summary.rows, first_row + seen)
                self.progress(seen)
                continue
            with self.folder.shard(index, first_row, self.rank, self.session, self.clock) as sink:
                for window in windows_of(shard_rows, self.window_rows):
                    typed, skipped = self.typer(window)
                    if skipped and self.on_error == "stop":
                        raise _stop(skipped, index, first_row, self.shard_rows)
                    sink.write(typed)
                    sink.skip(skipped)
                    numbered = [row.index for row in window if row.index is not None]
                    sink.end_row = max([sink.end_row, *(number + 1 for number in numbered[-1:])])
                    self.progress(len(numbered))
            summary.rows = max(summary.rows, sink.end_row)
            summary.typed_here += sink.typed
            summary.shards_typed_here += 1
            logger.debug(f"shard {index}: {sink.typed} typed, {len(sink.skipped)} skipped")
        return summary


def _stop(skipped: list[dict[str, Any]], shard: int, first_row: int, shard_rows: int) -> BadRowError:
    entry = skipped[0]
    name = f"Row {entry['row']} ({entry['where']})" if entry["row"] is not None else entry["where"]
    more = f" {len(skipped) - 1} more rows near it cannot be typed either." if len(skipped) > 1 else ""
    return BadRowError(
        f"{name} cannot be typed: {entry['error']}.{more} Nothing of shard {shard} (rows {first_row}.."
        f"{first_row + shard_rows - 1}) was written; the shards before it are kept. Run the same command with "
        "--on_error skip to type the other rows (the shards written are kept) and list the bad ones in the manifest, "
        "or fix the input and run it again with --overwrite (a changed input starts the run over).",
        entry,
    )


__all__ = ["BadRowError", "LabelRule", "LoopSummary", "Scorer", "ShardLoop", "WindowTyper", "shards_of", "windows_of"]
