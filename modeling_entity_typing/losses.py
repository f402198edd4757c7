"""Loss functions as pure functions of tensors."""

import torch
import torch.nn.functional as F


def multilabel_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over batch x types of (weighted) binary cross-entropy.

    With `weights` this is FiveFine's `WeightedBCELoss` (per example `sum_t w * bce / num_types`, mean over the batch);
    without, `BCEWithLogitsLoss()` as used for crowd and FET fine-tuning (reference `tasks/fettask.py`).
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), weight=weights)


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary, mean over rows; 0 (still differentiable) when there are no rows."""
    if targets.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets)


__all__ = ["multilabel_bce", "token_cross_entropy"]
