"""FiveFine's `type_space="encoder"`: mention and type phrase compared in the encoder's own output space.

The paper reads the mention at the typing mask through the MLM head and embeds type phrases with the MLM output
weights, which suits an encoder pretrained with masked-LM. A sentence-embedding encoder (e.g. all-MiniLM-L6-v2) was
trained instead so that mean-pooled outputs of related texts are close: its mask slot knows little, but the mean of
the mention's word pieces in the template already lies near the mean-pooled phrase of its type. So here the mention
vector is the mean of the mention's final hidden states inside `left [ mention ] (Type: <mask>) right`, a type vector
is the mean of the encoder's final hidden states over its phrase, and the score is `scale * cos + bias`.

The score stays one dot product, as every family's contract requires (`logits = mention @ types.T`, which the ONNX
export relies on): the mention vector is `[scale * m / |m|, bias]` and the type vector `[t / |t|, 1]`, both one
coordinate longer than the hidden size. Scale and bias sit on the mention side so that cached type vectors depend on
the encoder only.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class CosineTypeScorer(nn.Module):
    """The learned scale and bias of `scale * cos(mention, type) + bias`, applied as an extra coordinate.

    A bias is needed because the loss is BCE: without one, every type with a positive cosine (most of them, for a
    sentence encoder) starts "predicted", and training would push unrelated types to negative cosines instead of
    learning where the boundary lies. The scale is kept as a log, so it stays positive.
    """

    def __init__(self, initial_scale: float = 20.0, initial_bias: float = -5.0):
        super().__init__()
        self.initial_scale, self.initial_bias = initial_scale, initial_bias
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial_scale)))
        self.bias = nn.Parameter(torch.tensor(initial_bias))

    def mention_side(self, vectors: torch.Tensor) -> torch.Tensor:
        """`(batch, hidden)` -> `(batch, hidden + 1)`: `[scale * unit vector, bias]`."""
        scaled = self.log_scale.exp() * F.normalize(vectors, dim=-1)
        return torch.cat([scaled, self.bias.expand(vectors.size(0), 1).to(scaled.dtype)], dim=-1)

    @staticmethod
    def type_side(vectors: torch.Tensor) -> torch.Tensor:
        """`(types, hidden)` -> `(types, hidden + 1)`: `[unit vector, 1]`."""
        unit = F.normalize(vectors, dim=-1)
        return torch.cat([unit, unit.new_ones(unit.size(0), 1)], dim=-1)

    @staticmethod
    def direction(vectors: torch.Tensor) -> torch.Tensor:
        """`(n, hidden + 1)` vectors of either side -> `(n, hidden)`: the unit vector, without the extra coordinate."""
        return F.normalize(vectors[..., :-1], dim=-1)


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `(batch, len, hidden)` over the positions where `mask` `(batch, len)` is set."""
    weights = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def mention_span_mask(
    input_ids: torch.Tensor, slot_positions: torch.Tensor, open_ids: list[int], pieces_before_slot: int
) -> torch.Tensor:
    """`(batch, len)` mask of the mention's word pieces in `<cls> left <open> mention <prompt...> <mask> ...`.

    The mention ends where the prompt starts, `pieces_before_slot` pieces before the typing slot; it starts after the
    last `open_ids` sequence before that end. A mention whose own text contains the open marker (`"["` by default) is
    pooled from its last marker on. Built from tensor operations only, so it traces for ONNX.
    """
    batch, length = input_ids.shape
    ends = slot_positions - pieces_before_slot  # exclusive
    width = len(open_ids)
    windows = input_ids.unfold(1, width, 1)  # (batch, length - width + 1, width)
    starts = torch.arange(windows.size(1), device=input_ids.device)
    is_open = (windows == torch.tensor(open_ids, device=input_ids.device)).all(-1) & (starts + width < ends[:, None])
    last_open = torch.where(is_open, starts, torch.full_like(starts, -1)).amax(dim=1)
    # The check needs a data-dependent branch, which graph capture (ONNX export, torch.compile) cannot take; a captured
    # graph is fed by the template encoder, which always writes the marker.
    capturing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if not capturing and bool((last_open < 0).any()):
        rows = (last_open < 0).nonzero().flatten().tolist()
        raise ValueError(
            f"Rows {rows[:10]} hold no mention between the open marker {open_ids} and the type prompt: build inputs "
            "with the model's template (`model.get_mention_encoder(tokenizer)`)."
        )
    positions = torch.arange(length, device=input_ids.device)
    return (positions >= (last_open + width)[:, None]) & (positions < ends[:, None])


__all__ = ["CosineTypeScorer", "masked_mean", "mention_span_mask"]
