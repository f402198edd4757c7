"""One bulk run from start to manifest: the label set and rule, the output folder (new, resumed or refused), the fast
path, the shard loop of each process, and process 0's merge and manifest.

```python
>>> model, tokenizer = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
>>> source = open_source(InputSpec(("corpus.jsonl",)), recover=False)
>>> manifest = BulkRun(model, tokenizer, source, "typed/", BulkOptions(top_k=10), model_name=path).run()
```

The run is identified by its fingerprint: the model's weights and config, the options that decide the results
(`BulkOptions`) and the input. Run again with the same fingerprint, it resumes; with another, it is refused unless
`overwrite`. Which path `--fast auto` chose is stored with it, so a resumed run types as it started.
"""

import hashlib
import json
import logging
import os
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ..contract import EntityTypingModel, MentionEncoder
from ..export.cpu_inference import cpu_description
from ..mention_encoding import EncodedMention
from ..mention_inputs import Mention, check_inputs
from .fast_path import FAST_PATHS, MIN_AGREEMENT, ScorerFactory, choose_fast_path
from .processes import OneProcess, Processes
from .reading import Source
from .shards import OutputFolder
from .typer import LabelRule, LoopSummary, ShardLoop, WindowTyper
from .writers import OUTPUT_FORMATS


logger = logging.getLogger(__name__)

# How often process 0 looks whether the other processes' shards are written.
POLL_SECONDS = 0.5


class BulkError(RuntimeError):
    """A bulk run that cannot go on, with what to do about it."""


@dataclass(frozen=True)
class BulkOptions:
    """What decides a run's results (its fingerprint holds them all): labels, rule, fast path, batching, format."""

    candidate_labels: tuple[str, ...] | None = None
    label_phrases: tuple[tuple[str, str], ...] | None = None  # (label, phrase) pairs, from --label_phrases_file
    top_k: int | None = None
    threshold: float | None = None
    decision: str | None = None
    fast: str = "auto"
    batch_size: int = 32
    window_rows: int = 2048
    shard_rows: int = 10_000
    self_check_mentions: int = 512
    min_agreement: float = MIN_AGREEMENT
    output_format: str = "jsonl"

    def __post_init__(self):
        for name in ("batch_size", "window_rows", "shard_rows", "self_check_mentions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"`min_agreement` is a share in [0, 1], got {self.min_agreement!r}.")
        if self.fast not in ("auto", *FAST_PATHS):
            raise ValueError(f"`fast` must be 'auto' or one of {FAST_PATHS}, got {self.fast!r}.")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"`output_format` must be one of {sorted(OUTPUT_FORMATS)}, got {self.output_format!r}.")


def model_fingerprint(model: EntityTypingModel) -> dict[str, str]:
    """Hashes of the model's config and weights: the same model wherever its folder is, another once retrained."""
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        config.pop(volatile, None)
    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return {
        "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest(),
        "weights_sha256": weights.hexdigest(),
    }


def apply_label_set(model: EntityTypingModel, tokenizer: PreTrainedTokenizerBase, options: BulkOptions) -> bool:
    """Make the labels to type against the model's configured set; True when they are the model's own.

    Labels given at call time (`candidate_labels`, or all labels of `label_phrases`) replace the label set of this
    model object (not of its folder), as the pipeline's `candidate_labels` do for one call; so the type matrix is
    computed once and the ONNX export holds it.
    """
    if options.candidate_labels is None and options.label_phrases is None:
        return True
    if not model.supports_candidate_labels:
        raise BulkError(f"{type(model).__name__} types against its trained labels only: drop --candidate_labels.")
    phrases = dict(options.label_phrases or ())
    labels = list(options.candidate_labels) if options.candidate_labels is not None else list(phrases)
    try:
        model.set_label_set(labels, tokenizer, {label: phrases[label] for label in labels if label in phrases})
    except (TypeError, ValueError) as error:
        raise BulkError(f"The labels given cannot be a label set: {error}") from None
    return False


def first_mentions(
    source: Source, encoder: MentionEncoder, tokenizer: PreTrainedTokenizerBase, count: int
) -> list[EncodedMention]:
    """The templated inputs of the first `count` good mentions of the input (rows read: at most `4 * count`)."""
    rows = islice((row for row in source.rows() if row.record is not None), 4 * count)
    checked = [value for value in check_inputs([row.record for row in rows], tokenizer) if isinstance(value, Mention)]
    checked = checked[:count]
    return encoder.encode_batch([(m.text, m.start, m.end) for m in checked]) if checked else []


def _rss_mb() -> dict[str, float | None]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    try:
        current = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        current = None
    return {"peak_rss_mb": round(peak, 1), "rss_at_end_mb": None if current is None else round(current, 1)}


class BulkRun:
    """Types every row of `source` with `model` into the folder `output` (see `shards`), resumably, in this process
    and the others of `processes`; `run()` returns the manifest (process 0) or this process's summary."""

    def __init__(
        self,
        model: EntityTypingModel,
        tokenizer: PreTrainedTokenizerBase,
        source: Source,
        output: str | os.PathLike,
        options: BulkOptions = BulkOptions(),
        *,
        model_name: str = "",
        on_error: str = "stop",
        overwrite: bool = False,
        processes: Processes | None = None,
        progress: Callable[[int], None] | None = None,
    ):
        self.model, self.tokenizer, self.source, self.options = model.eval(), tokenizer, source, options
        self.model_name, self.on_error, self.overwrite = model_name, on_error, overwrite
        self.processes = processes or OneProcess()
        self.progress = progress
        self.folder = OutputFolder(output, OUTPUT_FORMATS[options.output_format])
        self.fingerprint = {
            "model": model_fingerprint(model),
            "options": {key: value for key, value in asdict(options).items()},
            "input": source.describe(),
        }
        self.own_labels = apply_label_set(model, tokenizer, options)
        self.labels = model.config.label_list()
        self.rule = LabelRule.resolve(
            model.config, self.labels, self.own_labels, options.threshold, options.top_k, options.decision
        )
        self.encoder = model.get_mention_encoder(tokenizer)
        self.factory = ScorerFactory(model, tokenizer, self.folder.shards, torch.get_num_threads())

    # --------------------------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        plan, scorer = self._plan()
        if plan.get("complete"):
            logger.info(f"{self.folder.path} already holds this run, complete: nothing to type.")
            return plan["manifest"]
        record = plan["record"]
        if scorer is None:
            scorer = self.factory(record["fast_path"]["chosen"])
        typer = WindowTyper(scorer, self.encoder, self.tokenizer, self.rule, self.options.batch_size)
        loop = ShardLoop(
            typer,
            self.folder,
            self.options.shard_rows,
            self.options.window_rows,
            self.on_error,
            self.processes.rank,
            self.processes.world,
            self.progress,
            plan["session"],
        )
        typing_started = time.perf_counter()
        summary = loop.run(self.source.rows())
        if self.processes.rank != 0:
            return asdict(summary)
        if summary.shards == 0:
            raise BulkError(f"The input holds no rows ({self.source.describe()}); nothing was typed.")
        self._wait_for_shards(summary.shards)
        typing_seconds = time.perf_counter() - typing_started
        records = self.folder.records(summary.shards)
        written = self.folder.merge(records)
        manifest = self._manifest(record, records, written, summary, plan, typing_seconds, started)
        self.folder.finish(manifest)
        logger.info(
            f"Typed {manifest['counts']['typed']} of {manifest['counts']['rows']} rows into "
            f"{self.folder.predictions} ({manifest['counts']['skipped_rows']} skipped)."
        )
        return manifest

    def _plan(self) -> tuple[dict[str, Any], Any]:
        """Process 0 checks the folder and, for a new run, chooses the fast path; every process gets the plan."""
        scorer = None
        if self.processes.rank == 0:
            try:
                plan, scorer = self._plan_here()
            except BaseException as error:
                self.processes.share({"error": f"{type(error).__name__}: {error}"})
                raise
        else:
            plan = None
        plan = self.processes.share(plan)
        if "error" in plan:
            raise BulkError(f"Process 0 stopped the run: {plan['error']}")
        return plan, scorer

    def _plan_here(self) -> tuple[dict[str, Any], Any]:
        """Check the folder; a new run (or one killed before its fast path was chosen) writes its record first, so
        that the folder is this run's from the first file in it, then chooses the path and records it."""
        keep = self.model_name if self.model_name and Path(self.model_name).is_dir() else None
        stored = self.folder.prepare(self.fingerprint, self.overwrite, keep=keep)
        session = uuid.uuid4().hex[:12]
        if stored is not None and self.folder.is_complete():
            return {"complete": True, "manifest": stored, "session": session}, None
        if stored is not None and stored.get("fast_path") is not None:
            logger.info(f"Resuming the run in {self.folder.path} with its fast path {stored['fast_path']['chosen']}.")
            return {"record": stored, "session": session, "resumed": True}, None
        record = stored or {
            "fingerprint": self.fingerprint,
            "fast_path": None,  # chosen next
            "model_name": self.model_name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self.folder.start(record)
        needed = self.options.self_check_mentions
        sample = (
            first_mentions(self.source, self.encoder, self.tokenizer, needed) if self.options.fast == "auto" else []
        )
        scorer, choice = choose_fast_path(
            self.options.fast, self.factory, sample, self.options.batch_size, needed, self.options.min_agreement
        )
        record = {**record, "fast_path": choice.to_dict()}
        self.folder.start(record)
        return {"record": record, "session": session, "resumed": False}, scorer

    def _wait_for_shards(self, count: int) -> None:
        """Process 0 waits until the other processes' shards are written (a failed process ends the launch)."""
        waited = False
        while not all(self.folder.is_done(index) for index in range(count)):
            if not waited:
                logger.info("Waiting for the other processes to write their shards.")
                waited = True
            time.sleep(POLL_SECONDS)

    # ----------------------------------------------------------------------------------------------- manifest
    def _manifest(self, record, records, written, summary: LoopSummary, plan, typing_seconds, started) -> dict:
        skipped = [entry for shard in records for entry in shard.skipped]
        skipped_rows = sum(1 for entry in skipped if entry.get("row") is not None)
        rows = records[-1].end_row if records else 0
        typed_seconds = sum(shard.seconds for shard in records)
        in_session = sum(shard.typed for shard in records if shard.session == plan["session"])
        counts = {
            "rows": rows,
            "typed": written,
            "skipped_rows": skipped_rows,
            "unreadable_lines": len(skipped) - skipped_rows,
            "shards": len(records),
        }
        if counts["typed"] + counts["skipped_rows"] != counts["rows"]:
            raise BulkError(f"The counts do not add up: {counts}; the shards were changed while the run went on.")
        return {
            "status": "complete",
            "fingerprint": self.fingerprint,
            "model": {
                "name": self.model_name,
                "class": type(self.model).__name__,
                "model_type": self.model.config.model_type,
                "labels": "the model's own"
                if self.own_labels
                else "given (--candidate_labels / --label_phrases_file)",
                "num_labels": len(self.labels),
            },
            "options": self.fingerprint["options"],
            "rule": self.rule.describe(),
            "fast_path": record["fast_path"],
            "input": self.fingerprint["input"],
            "output": {"file": self.folder.predictions.name, "format": self.options.output_format},
            "counts": counts,
            "skipped": skipped,
            "throughput": {
                "mentions_per_second": round(in_session / typing_seconds, 2) if typing_seconds > 0 else None,
                "typed_this_session": in_session,
                "typing_seconds_this_session": round(typing_seconds, 2),
                "wall_seconds_this_session": round(time.perf_counter() - started, 2),
                "mentions_per_process_second": round(written / typed_seconds, 2) if typed_seconds > 0 else None,
                "process_seconds_all_sessions": round(typed_seconds, 2),
                "sessions": len({shard.session for shard in records}),
                "resumed": plan.get("resumed", False),
            },
            "machine": {
                "cpu": cpu_description(),
                "processes": self.processes.world,
                "threads_per_process": torch.get_num_threads(),
                "torch": torch.__version__,
            },
            "memory_process_0": _rss_mb(),
        }


__all__ = ["BulkError", "BulkOptions", "BulkRun", "apply_label_set", "first_mentions", "model_fingerprint"]
