"""Sampled negative types: train against every type a batch uses plus a random few of the rest.

When a family encodes each type phrase with the full encoder, a step against all 10,331 UFET types would run the
encoder over ~40k phrase pieces, ~30x the batch itself. Keeping each batch's target types and `num_negatives` others
drawn uniformly (the sampled-negatives BCE of bi-encoders, e.g. Gillick et al., CoNLL 2019, "Learning Dense
Representations for Entity Retrieval") costs a fraction of that. It is an approximation: the negative term is a
uniform sample of the full one, so calibration shifts, which the dev-tuned decision threshold absorbs. Draws use the
global torch generator, which the training loop seeds per batch, so a resumed run draws the same columns.
"""

import torch

from ..contract import EntityTypingModel


def target_columns(labels: torch.Tensor) -> torch.Tensor:
    """Indices of the types that at least one row of the multi-hot `labels` `(batch, num_types)` holds, ascending."""
    return labels.bool().any(dim=0).nonzero().flatten()


def draw_negatives(num_types: int, targets: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
    """`count` type indices drawn uniformly without replacement from those not in `targets` (global generator), and
    how many non-target types there were to draw from."""
    is_other = torch.ones(num_types, dtype=torch.bool, device=targets.device)
    is_other[targets] = False
    others = is_other.nonzero().flatten()
    return others[torch.randperm(others.numel(), device=others.device)[:count]], others.numel()


def sample_type_columns(batch: dict, model: EntityTypingModel, num_negatives: int) -> dict:
    """`batch` restricted to its target types plus `num_negatives` random others, as forward's one-off label set.

    `labels` (and `label_weights`) keep only the chosen columns, in vocabulary order, and the model's
    `type_subset_inputs` of those columns are added, so that it scores exactly those types.
    """
    labels = batch["labels"]
    targets = target_columns(labels)
    drawn, _ = draw_negatives(labels.size(1), targets, num_negatives)
    keep = torch.cat([targets, drawn]).sort().values
    sampled = {**batch, "labels": labels[:, keep]}
    if batch.get("label_weights") is not None:
        sampled["label_weights"] = batch["label_weights"][:, keep]
    subset = model.type_subset_inputs(keep.to(model.device))
    return {**sampled, **{name: tensor.to(labels.device) for name, tensor in subset.items()}}


__all__ = ["draw_negatives", "sample_type_columns", "target_columns"]
