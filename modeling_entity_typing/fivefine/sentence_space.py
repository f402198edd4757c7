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

import logging
import math
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .mlm_space import MlmTypeSpace
from .type_space import TypeSpace


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


_NO_TEMPLATE_IDS = (
    "`type_space='encoder'` needs the template ids: call `model.get_mention_encoder(tokenizer)` once (from_encoder "
    "and the pipeline do) before scoring."
)


class EncoderTypeSpace(CosineTypeScorer, TypeSpace):
    """The encoder's own type space: its only weights are the scorer's scale and bias, kept as `type_scorer.*`."""

    attribute = "type_scorer"
    # Typing reads the encoder's mean, not the MLM head's transform, so only the MLM term trains the transform; left
    # trainable, DDP stops at the first step (a parameter without gradient) when MLM is off.
    auxiliary_parameter_prefixes = MappingProxyType(
        {
            **MlmTypeSpace.auxiliary_parameter_prefixes,
            "mlm": (*MlmTypeSpace.auxiliary_parameter_prefixes["mlm"], "cls.predictions.transform."),
        }
    )
    supports_label_examples = True
    encodes_types_with_encoder = True

    def __init__(self, config):
        super().__init__()  # the scorer's default scale and bias; the encoder is the model's

    def mention_vectors(self, model, sequence_output, slot_positions, input_ids):
        """The mean of the mention's pieces, with the scorer's scale and bias attached."""
        config = model.config
        if config.pieces_before_slot is None:
            raise ValueError(_NO_TEMPLATE_IDS)
        span = mention_span_mask(input_ids, slot_positions, config.mention_open_ids, config.pieces_before_slot)
        return self.mention_side(masked_mean(sequence_output, span))

    def encode_types(self, model, phrase_ids, phrase_mask):
        """The encoder's mean-pooled `[cls] phrase [sep]`: `(num_types, hidden + 1)`."""
        ids, mask = with_phrase_boundaries(model.config, phrase_ids, phrase_mask)
        return self.type_side(mean_pooled_by_length(model.bert, ids, mask))

    def type_weights(self, model):
        return list(model.bert.parameters())

    def check_training_terms(self, weights) -> None:
        if weights.get("mlm", 0) > 0:
            raise ValueError(
                "--mlm_loss_weight must be 0 with type_space 'encoder': the mention vector is the mean of the "
                "mention's pieces, which MLM corruption would replace (the template's marker too). Pass "
                "--mlm_loss_weight 0."
            )

    def adopt_template(self, config, encoder) -> None:
        """Record (first time) or check the template ids that find the mention's pieces and wrap phrases, so a
        tokenizer other than the model's own fails here rather than pooling the wrong span."""
        fields = ("mention_open_ids", "pieces_before_slot", "phrase_boundary_ids")
        found = (
            list(encoder.open_ids),
            encoder.prompt_ids["type"].index(encoder.mask_id),
            [encoder.cls_id, encoder.sep_id],
        )
        recorded = tuple(getattr(config, name) for name in fields)
        if recorded == (None, None, None):
            for name, value in zip(fields, found):
                setattr(config, name, value)
        elif recorded != found:
            raise ValueError(
                f"This tokenizer gives the template ids {dict(zip(fields, found))}; the model was set up with "
                f"{dict(zip(fields, recorded))}. Use the tokenizer saved with the model."
            )

    @torch.no_grad()
    def initialize(self) -> None:
        init.constant_(self.log_scale, math.log(self.initial_scale))
        init.constant_(self.bias, self.initial_bias)

    def describe_missing_mlm_head(self, name_or_path):
        return logging.INFO, f"{name_or_path} has no MLM head; `type_space='encoder'` types without one."


def with_phrase_boundaries(config, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[cls] phrase [sep]` per row, as the tokenizer encodes a text: a lone word piece without them comes out of a
    sentence encoder nearly the same whatever the word (measured on MiniLM), so the boundaries are needed."""
    if config.phrase_boundary_ids is None:
        raise ValueError(_NO_TEMPLATE_IDS)
    cls_id, sep_id = config.phrase_boundary_ids
    lengths, pad_id = mask.sum(dim=1), config.pad_token_id or 0
    wrapped = ids.new_full((ids.size(0), ids.size(1) + 2), pad_id)
    wrapped[:, 0] = cls_id
    wrapped[:, 1:-1] = ids.masked_fill(~mask, pad_id)
    wrapped[torch.arange(ids.size(0), device=ids.device), lengths + 1] = sep_id
    positions = torch.arange(wrapped.size(1), device=ids.device)
    return wrapped, positions[None, :] < (lengths + 2)[:, None]


def mean_pooled_by_length(encoder: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The encoder's mean output over each row's unmasked pieces, rows of equal length run together unpadded.

    Type phrases are short and uneven (UFET: 3.5 pieces with the boundaries, padded to 7), so padding to the longest
    would double the work; attention masks out padding anyway, so the vectors are the same up to float rounding (the
    masked softmax gives padded keys zero weight).
    """
    if ids.size(0) == 0:
        return encoder.embeddings.word_embeddings.weight.new_zeros(0, encoder.config.hidden_size)
    lengths = mask.sum(dim=1)
    order, pooled = [], []
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().flatten()
        group = ids[rows, :length]
        hidden = encoder(input_ids=group, attention_mask=torch.ones_like(group)).last_hidden_state
        order.append(rows)
        pooled.append(hidden.mean(dim=1))
    return torch.cat(pooled)[torch.cat(order).argsort()]


__all__ = [
    "CosineTypeScorer",
    "EncoderTypeSpace",
    "masked_mean",
    "mean_pooled_by_length",
    "mention_span_mask",
    "with_phrase_boundaries",
]
