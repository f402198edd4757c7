"""The `entity-typing` command (also `python -m modeling_entity_typing`): `predict` types a whole corpus, `evaluate`
scores its output against gold labels.

    entity-typing predict --model DIR_OR_HUB_NAME --input corpus.jsonl --output typed/ --top_k 10
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m modeling_entity_typing predict ...
    entity-typing evaluate --predictions typed/ --gold corpus.jsonl

`entity-typing COMMAND --help` lists every option. A bad option or input stops the command with what is wrong and
how to fix it (exit status 2); a killed `predict` resumes when run again with the same options.
"""

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import transformers
from transformers import HfArgumentParser

from ..data.mention_data import MentionDataError
from ..output_paths import refuse_to_replace
from .evaluate_predictions import evaluate_predictions
from .fast_path import MIN_AGREEMENT
from .reading import Columns, InputSpec
from .runner import BulkError


logger = logging.getLogger(__name__)

PROG = "entity-typing"
# Errors that come from what the user gave: reported as one message, without a traceback.
USER_ERRORS = (BulkError, MentionDataError, ValueError, TypeError, OSError)


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise ValueError(f"--{name} must be a positive integer, got {value}.")


def _share(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"--{name} is a probability in [0, 1], got {value}.")


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "A saved model folder (save_pretrained) or a Hub model name."})
    input: list[str] = field(
        metadata={
            "help": "What to type: one or more files (JSON lines, CSV, Parquet, or any format of `load_mentions`: "
            "mentions, ufet, ali, afet, tsv, bio; plain or .gz), or a dataset (a `save_to_disk` folder, a folder of "
            "data files or a Hub dataset name)."
        }
    )
    output: str = field(
        metadata={"help": "Output folder: predictions.jsonl (or .parquet) and manifest.json; shards/ while running."}
    )
    input_format: Literal[
        "auto", "mentions", "ufet", "ali", "afet", "tsv", "bio", "jsonl", "csv", "parquet", "dataset"
    ] = field(
        default="auto",
        metadata={
            "help": "auto: .parquet/.csv by suffix, a folder or name that is no file as a dataset, JSON lines with "
            "the --text_column as jsonl, else the load_mentions format found in the first line."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Column of the text (jsonl, csv, parquet, dataset)."})
    span_column: str = field(
        default="span",
        metadata={"help": "Column of the mention: [start, end] character offsets or the mention string."},
    )
    start_column: str = field(default="start", metadata={"help": "Column of the start offset, when no span column."})
    end_column: str = field(default="end", metadata={"help": "Column of the end offset (exclusive)."})
    id_column: str = field(default="id", metadata={"help": "Column of the row id; without it the row number."})
    split: str | None = field(default=None, metadata={"help": "Dataset split (needed when it has several)."})
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name (Hub datasets)."})
    streaming: bool = field(default=False, metadata={"help": "Stream the dataset instead of loading it first."})
    candidate_labels: list[str] | None = field(
        default=None, metadata={"help": "Type against these labels instead of the model's own (zero-shot)."}
    )
    label_phrases_file: str | None = field(
        default=None,
        metadata={
            "help": "'label<TAB>phrase' per line: the words each label is read as; alone, its labels are the label "
            "set; with --candidate_labels, phrases for those of them it names."
        },
    )
    top_k: int | None = field(
        default=None, metadata={"help": "At most this many labels per mention (alone: the k best)."}
    )
    threshold: float | None = field(
        default=None, metadata={"help": "Every label with probability >= this (the best one if none passes)."}
    )
    decision: Literal["threshold", "argmax_with_ancestors"] | None = field(
        default=None, metadata={"help": "The rule by name; default: the model's (config.decision at its threshold)."}
    )
    fast: Literal["auto", "fp32", "bf16", "int8"] = field(
        default="auto",
        metadata={
            "help": "auto: the fastest path whose top labels agree with fp32 on >= --min_agreement of the first "
            "--self_check_mentions mentions on this CPU (bf16 only with native bf16; int8 via ONNX); recorded in the "
            "manifest."
        },
    )
    dtype: Literal["float32", "bfloat16"] | None = field(
        default=None, metadata={"help": "Shorthand: float32 is --fast fp32, bfloat16 is --fast bf16."}
    )
    batch_size: int = field(default=32, metadata={"help": "Mentions per model call."})
    window_rows: int = field(
        default=2048, metadata={"help": "Rows sorted by length together before batching (bounds memory)."}
    )
    shard_rows: int = field(default=10_000, metadata={"help": "Rows per output shard (the unit written and resumed)."})
    output_format: Literal["jsonl", "parquet"] = field(
        default="jsonl", metadata={"help": "Format of the predictions."}
    )
    on_error: Literal["stop", "skip"] = field(
        default="stop",
        metadata={
            "help": "stop: a row that cannot be typed stops the run before its shard is written; skip: type the "
            "others and list every bad row (number, file:line, why) in the manifest."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace an output folder holding anything else (other files, a run of another model, input or "
            "options); the same run is resumed either way."
        },
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "Threads per process; default: torch's, or the cores shared out among processes."},
    )
    self_check_mentions: int = field(
        default=512, metadata={"help": "Mentions --fast auto checks the faster paths on."}
    )
    min_agreement: float = field(
        default=MIN_AGREEMENT, metadata={"help": "Share of fp32's top labels a faster path must keep (--fast auto)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar (mentions/s, ETA)."})

    def __post_init__(self):
        for name in ("batch_size", "window_rows", "shard_rows", "self_check_mentions", "threads", "top_k"):
            _positive(name, getattr(self, name))
        _share("threshold", self.threshold)
        _share("min_agreement", self.min_agreement)
        if self.dtype is not None:
            implied = {"float32": "fp32", "bfloat16": "bf16"}[self.dtype]
            if self.fast not in ("auto", implied):
                raise ValueError(f"--dtype {self.dtype} means --fast {implied}, but --fast {self.fast} was given.")
            self.fast = implied
        if self.decision == "argmax_with_ancestors" and self.threshold is not None:
            raise ValueError("--threshold goes with --decision threshold; argmax_with_ancestors takes none.")
        if self.label_phrases_file is not None and not Path(self.label_phrases_file).is_file():
            raise FileNotFoundError(f"--label_phrases_file {self.label_phrases_file}: no such file.")


@dataclass
class EvaluateArguments:
    predictions: str = field(
        metadata={"help": "The --output folder of `entity-typing predict` (or its predictions file)."}
    )
    gold: list[str] = field(metadata={"help": "The gold file(s) that were typed, in a load_mentions format."})
    gold_format: Literal["mentions", "ufet", "ali", "afet", "tsv", "bio"] | None = field(
        default=None, metadata={"help": "Format of the gold files; default: detected."}
    )
    hierarchical: bool = field(
        default=False, metadata={"help": "Close both sides under /-path ancestors first (FET benchmarks)."}
    )
    output: str | None = field(default=None, metadata={"help": "Also write the scores to this JSON file."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output file."})


def predict(args: PredictArguments) -> int:
    """Type `args.input` with `args.model` into `args.output`; see `runner.BulkRun`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ..contract import EntityTypingModel
    from ..fivefine import read_label_phrases
    from .processes import current_processes
    from .reading import open_source
    from .runner import BulkOptions, BulkRun

    processes = current_processes()
    _configure_logging(processes.rank)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif processes.world > 1:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // processes.world))
    try:
        model = AutoModel.from_pretrained(args.model)
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    except OSError as error:
        raise BulkError(
            f"Cannot load the model {args.model!r}: {error}. Give a folder written by `save_pretrained` (model and "
            "tokenizer) or a Hub model name (offline: one already in the cache)."
        ) from None
    if not isinstance(model, EntityTypingModel):
        raise BulkError(f"{args.model} is a {type(model).__name__}, not an entity-typing model of this package.")
    phrases = read_label_phrases(args.label_phrases_file) if args.label_phrases_file else None
    options = BulkOptions(
        candidate_labels=tuple(args.candidate_labels) if args.candidate_labels else None,
        label_phrases=tuple(phrases.items()) if phrases else None,
        top_k=args.top_k,
        threshold=args.threshold,
        decision=args.decision,
        fast=args.fast,
        batch_size=args.batch_size,
        window_rows=args.window_rows,
        shard_rows=args.shard_rows,
        self_check_mentions=args.self_check_mentions,
        min_agreement=args.min_agreement,
        output_format=args.output_format,
    )
    spec = InputSpec(
        tuple(args.input),
        args.input_format,
        Columns(args.text_column, args.span_column, args.start_column, args.end_column, args.id_column),
        args.split,
        args.dataset_config,
        args.streaming,
    )
    source = open_source(spec, recover=args.on_error == "skip")
    bar = ProgressBar(source.count if args.progress and processes.rank == 0 else None)
    try:
        run = BulkRun(
            model,
            tokenizer,
            source,
            args.output,
            options,
            model_name=args.model,
            on_error=args.on_error,
            overwrite=args.overwrite,
            processes=processes,
            progress=bar.update,
        )
        manifest = run.run()
    finally:
        bar.close()
        processes.close()
    if processes.rank == 0:
        counts, speed = manifest["counts"], manifest["throughput"]["mentions_per_second"]
        print(
            f"{counts['typed']} of {counts['rows']} rows typed ({counts['skipped_rows']} skipped) with the "
            f"{manifest['fast_path']['chosen']} path, {speed} mentions/s this session: {run.folder.predictions}"
        )
    return 0


class ProgressBar:
    """A `tqdm` bar of rows read (mentions/s, and the ETA where `total` tells the input's size), started at the first
    row typed, so that loading the model and the `--fast auto` check do not count in its rate; `total=None`: no bar."""

    def __init__(self, total: Callable[[], int | None] | None):
        self.total, self.bar = total, None

    def update(self, rows: int) -> None:
        if self.total is None:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total(), unit=" mentions", smoothing=0.05)
        self.bar.update(rows)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate(args: EvaluateArguments) -> int:
    """Score a run's predictions against the gold files and print (and optionally write) the scores."""
    if args.output is not None:
        refuse_to_replace([args.output], args.overwrite, "--overwrite")
    scores = evaluate_predictions(args.predictions, args.gold, args.gold_format, args.hierarchical)
    text = json.dumps(scores, indent=2)
    if args.output is not None:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


COMMANDS = {
    "predict": (PredictArguments, predict, "Type every mention of a file or dataset; resumable; multi-process."),
    "evaluate": (EvaluateArguments, evaluate, "Score predictions against gold labels (strict, macro and micro F1)."),
}


def _configure_logging(rank: int) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if rank != 0:
        logging.getLogger("modeling_entity_typing").setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_warning()


def _usage() -> str:
    lines = [f"usage: {PROG} {{{','.join(COMMANDS)}}} [options]", "", "commands:"]
    lines += [f"  {name:<10} {description}" for name, (_, _, description) in COMMANDS.items()]
    lines += ["", f"`{PROG} COMMAND --help` lists the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0, or 2 for an error the user can fix)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command = argv[0]
    if command not in COMMANDS:
        print(f"{PROG}: error: unknown command {command!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    arguments, run, description = COMMANDS[command]
    parser = HfArgumentParser(arguments, prog=f"{PROG} {command}", description=description)
    try:
        (args,) = parser.parse_args_into_dataclasses(args=argv[1:])
        return run(args)
    except USER_ERRORS as error:
        print(f"{PROG} {command}: error: {error}", file=sys.stderr)
        return 2


def console_main() -> None:
    """The console entry point (setup.cfg)."""
    sys.exit(main())


__all__ = ["COMMANDS", "EvaluateArguments", "PredictArguments", "console_main", "main"]
