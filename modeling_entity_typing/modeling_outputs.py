"""The one output type of every model family, so pipeline, metrics and scripts never branch on the family."""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class EntityTypingOutput(ModelOutput):
    r"""
    loss (`torch.Tensor` of shape `()`, *optional*):
        Weighted sum of the loss terms that were computed.
    logits (`torch.Tensor` of shape `(batch_size, num_types)`):
        Type scores before the sigmoid.
    type_loss (`torch.Tensor` of shape `()`, *optional*):
        Multi-label BCE against `labels`.
    mlm_loss (`torch.Tensor` of shape `()`, *optional*):
        Masked-LM loss on the corrupted input (unweighted).
    nwp_loss (`torch.Tensor` of shape `()`, *optional*):
        Neighbor-word-prediction loss (unweighted).
    mention_embeddings (`torch.Tensor` of shape `(batch_size, hidden_size)`):
        The vector each mention is scored with.
    hidden_states, attentions (`tuple[torch.Tensor]`, *optional*):
        The encoder's, when asked for with `output_hidden_states` / `output_attentions`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    type_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nwp_loss: torch.Tensor | None = None
    mention_embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


__all__ = ["EntityTypingOutput"]
