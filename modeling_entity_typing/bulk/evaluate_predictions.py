"""`entity-typing evaluate`: a bulk run's predictions scored against gold labels with the package's metric
(`evaluation.typing_scores`), joined row by row (the predictions' `row` is the gold file's record number)."""

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..data.mention_data import iter_mentions
from ..evaluation import typing_scores
from .shards import MANIFEST_FILE
from .writers import output_format_of


def predictions_file(path: str | os.PathLike) -> Path:
    """The predictions file of a bulk output folder (from its manifest), or `path` itself when it is a file."""
    path = Path(path)
    if path.is_dir():
        manifest = path / MANIFEST_FILE
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{path} holds no finished bulk run (no {MANIFEST_FILE}); finish it by running the same "
                "`entity-typing predict` command again, or pass the predictions file itself."
            )
        return path / json.loads(manifest.read_text())["output"]["file"]
    if not path.is_file():
        raise FileNotFoundError(f"No predictions at {path}: pass the --output folder of `entity-typing predict`.")
    return path


def read_predictions(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The output rows of a bulk run, in row order."""
    file = predictions_file(path)
    return output_format_of(file).read(file)


def evaluate_predictions(
    predictions: str | os.PathLike,
    gold: Sequence[str | os.PathLike],
    gold_format: str | None = None,
    hierarchical: bool = False,
) -> dict[str, Any]:
    """Scores of the predictions against the gold files (a `load_mentions` format, the input that was typed).

    A gold mention without a prediction (a row the run skipped) counts as predicting no label, and is counted in
    `missing_predictions`. A prediction whose mention is not the gold record's, or of a row the gold files lack,
    means the predictions are of another input: an error.
    """
    if not gold:
        raise ValueError("No gold file given: pass --gold with the file(s) that were typed.")
    rows = read_predictions(predictions)
    pending = next(rows, None)
    predicted, references, missing, index = [], [], 0, 0
    for file in gold:
        for record in iter_mentions(file, gold_format, check_ids=False):
            references.append(record["labels"])
            if pending is not None and pending["row"] == index:
                mention = record["text"][record["start"] : record["end"]]
                if pending["mention"] != mention:
                    raise ValueError(
                        f"Prediction row {index} is of the mention {pending['mention']!r} but gold record {index} "
                        f"({file}) is {mention!r}: the predictions are of another input. Pass the file that was typed."
                    )
                predicted.append(list(pending["labels"]))
                pending = next(rows, None)
            else:
                predicted.append([])
                missing += 1
            index += 1
    if pending is not None:
        raise ValueError(
            f"The predictions go on past the {index} gold records (row {pending['row']}): they are of another input."
        )
    scores = typing_scores(predicted, references, hierarchical=hierarchical)
    return {**scores, "missing_predictions": missing, "hierarchical": hierarchical}


__all__ = ["evaluate_predictions", "predictions_file", "read_predictions"]
