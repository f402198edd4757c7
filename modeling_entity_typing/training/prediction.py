"""Prediction over a prepared (possibly sharded) dataloader: type probabilities or decided labels for every row,
gathered from all processes in dataset order (what dev selection and the final evaluation score).
"""

from collections.abc import Sequence
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch.utils.data import DataLoader

from ..decision import check_rule_options, decide
from .features import INDEX_KEY, INFERENCE_KEYS


@torch.no_grad()
def predict_logits(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> torch.Tensor:
    """Type logits `(rows, types)` for every row of a prepared dataloader, from all processes, in order."""
    was_training = model.training
    model.eval()
    rows: list[tuple[int, torch.Tensor]] = []
    for batch in dataloader:
        index = batch[INDEX_KEY]
        inputs = {key: batch[key] for key in INFERENCE_KEYS}
        rows.extend(zip(index.tolist(), model(**inputs).logits.float().cpu()))
    model.train(was_training)
    return torch.stack(gather_predictions(rows, accelerator))


def predict_probabilities(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> torch.Tensor:
    """Type probabilities `(rows, types)`: the sigmoid of `predict_logits`."""
    return predict_logits(model, dataloader, accelerator).sigmoid()


def predict_labels(
    model: torch.nn.Module,
    dataloader: DataLoader,
    accelerator: Accelerator,
    labels: Sequence[str],
    decision: str,
    threshold: float = 0.5,
) -> list[list[str]]:
    """Predicted labels for every row of a prepared dataloader, gathered from all processes, in dataset order."""
    check_rule_options(None, None, decision)  # before the predictions, not after
    probabilities = predict_probabilities(model, dataloader, accelerator)
    return [[item["label"] for item in decide(row, labels, decision, threshold)] for row in probabilities]


def gather_predictions(rows: list[tuple[int, Any]], accelerator: Accelerator) -> list[Any]:
    """`(row index, prediction)` pairs from every process -> predictions in dataset order, each row once.

    Deduplicating by row index replaces `gather_for_metrics`' truncation, which trusts the remainder of the most
    recently exhausted dataloader: evaluating inside a streamed training epoch, that is the training stream's.
    """
    gathered = gather_object(rows) if accelerator.num_processes > 1 else rows
    unique = dict(gathered)  # `even_batches` pads a short last batch with repeats of early rows: same index
    return [unique[index] for index in sorted(unique)]


__all__ = ["gather_predictions", "predict_labels", "predict_logits", "predict_probabilities"]
