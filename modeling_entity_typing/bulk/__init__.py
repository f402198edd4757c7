"""Typing a whole corpus: streaming input sources, an atomic and resumable shard writer, the `--fast auto` choice,
length-sorted batching and the `entity-typing` command (`cli`). Sits beside the pipeline, not on it: it uses the
models, `decision` and `mention_inputs` directly, as the pipeline does, so both give the same labels and scores."""

from .evaluate_predictions import evaluate_predictions, read_predictions
from .fast_path import FAST_PATHS, FastPathChoice, choose_fast_path
from .reading import Columns, InputSpec, Row, open_source
from .runner import BulkError, BulkOptions, BulkRun
from .shards import OutputFolder
from .typer import BadRowError, LabelRule, ShardLoop, WindowTyper


__all__ = [
    "FAST_PATHS",
    "BadRowError",
    "BulkError",
    "BulkOptions",
    "BulkRun",
    "Columns",
    "FastPathChoice",
    "InputSpec",
    "LabelRule",
    "OutputFolder",
    "Row",
    "ShardLoop",
    "WindowTyper",
    "choose_fast_path",
    "evaluate_predictions",
    "open_source",
    "read_predictions",
]
