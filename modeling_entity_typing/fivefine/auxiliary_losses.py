"""FiveFine's two auxiliary terms (paper section 3.2): masked-LM on the corrupted input, and neighbor-word prediction
(`(Left: [MASK])` / `(Right: [MASK])` prompts, inputs from `neighbor_words`) through its own, untied MLM head."""

import torch
from torch import nn

from ..layers import gather_positions
from ..losses import token_cross_entropy


def masked_lm_loss(
    mlm_head: nn.Module, sequence_output: torch.Tensor, mlm_labels: torch.Tensor, slot_positions: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the MLM targets (-100 elsewhere); the typing slot is never one."""
    mlm_labels = mlm_labels.clone()
    mlm_labels[torch.arange(mlm_labels.size(0), device=mlm_labels.device), slot_positions] = -100
    targeted = mlm_labels != -100
    # Vocabulary logits only where there is a target: the full (batch, seq, vocab) tensor is never built.
    return token_cross_entropy(mlm_head(sequence_output[targeted]), mlm_labels[targeted])


def neighbor_word_loss(
    encoder: nn.Module,
    nwp_head: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
    targets: torch.Tensor | None,
) -> torch.Tensor:
    """Cross-entropy of the neighbor word at each prompt's mask (`positions`)."""
    if targets is None:
        raise ValueError("`nwp_input_ids` needs `nwp_labels`: the word-piece id to predict for each row.")
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return token_cross_entropy(nwp_head(gather_positions(hidden, positions)), targets)


__all__ = ["masked_lm_loss", "neighbor_word_loss"]
