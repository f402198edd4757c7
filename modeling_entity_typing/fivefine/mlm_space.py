"""FiveFine's own type space (the paper's, `type_space="mlm"`): the MLM head's transform at the typing mask against
type phrases pooled by attention over the tied MLM output embeddings. It suits encoders pretrained with masked-LM.
Choices between paper and code follow the code (hldai/fivefine), so that the released weights load by key.
"""

import logging
import math
from types import MappingProxyType

import torch
from torch import nn
from transformers import initialization as init

from ..configuration import FiveFineConfig
from ..layers import gather_positions
from .type_space import TypeSpace


class TypePhraseEncoder(nn.Module):
    """Pools a phrase's token embeddings into one type vector (reference `MultiHeadAttentionDirect`).

    One learned query shared by all types plus a zero-initialised per-head offset `u`; keys and values are linear
    maps of the token embeddings; heads are concatenated, projected by `output`, doubled (the reference's `'an'`
    post-process adds the output to itself) and layer-normalised. The paper's Eq. 2 has no output projection and no
    LayerNorm; the code's form is kept so the released weights load.

    `encode_phrases` (what `encode_types` uses) computes `forward` without its per-position projections, which cost
    as much as the encoder when training on UFET's 10,331 types: keys and values depend only on the word piece, so
    each distinct piece (5.6k there) is projected once and gathered back per position; the key enters only through
    `k_h . q_h = e . (W_k,h^T q_h) + b_k,h . q_h`, so the query is folded into the key weight (one score per piece and
    head); padding, whose weight is exactly 0, is skipped in the weighted sum. Each step is an exact rewrite, and the
    mask, softmax and dropout act on the same `(types, heads, len)` tensor, so values and all gradients equal
    `forward`'s up to float rounding (seeded dropout included).
    """

    def __init__(self, config: FiveFineConfig):
        super().__init__()
        hidden_size, self.num_heads = config.hidden_size, config.type_attention_heads
        self.head_size = hidden_size // self.num_heads
        self.query = nn.Parameter(torch.empty(1, hidden_size))
        self.head_offset = nn.Parameter(torch.zeros(self.num_heads, self.head_size))
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(config.type_attention_dropout)
        self.layer_norm = nn.LayerNorm(hidden_size)  # eps 1e-5 as in the reference (torch default)

    def _head_queries(self) -> torch.Tensor:
        return self.query.view(self.num_heads, self.head_size) + self.head_offset  # (heads, head_size)

    def _attention_weights(self, scores: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """`(types, heads, len)` scores -> masked softmax weights, with attention dropout."""
        scores = scores.masked_fill(~token_mask[:, None, :], torch.finfo(scores.dtype).min)
        return self.dropout(scores.softmax(dim=-1))

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        """`(types, heads, head_size)` pooled values -> `(types, hidden)` type vectors."""
        return self.layer_norm(2 * self.output(pooled.flatten(1)))

    def forward(self, token_embeddings: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """`(num_types, max_len, hidden)` embeddings and `(num_types, max_len)` mask -> `(num_types, hidden)`."""
        num_types, length, _ = token_embeddings.shape
        keys = self.key(token_embeddings).view(num_types, length, self.num_heads, self.head_size)
        values = self.value(token_embeddings).view(num_types, length, self.num_heads, self.head_size)
        scores = torch.einsum("tlhd,hd->thl", keys, self._head_queries()) / math.sqrt(self.head_size)
        weights = self._attention_weights(scores, token_mask)
        return self._project(torch.einsum("thl,tlhd->thd", weights, values))

    def encode_phrases(
        self, embedding_matrix: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """`forward(embedding_matrix[token_ids], token_mask)`, projecting each distinct word piece once."""
        num_types, length = token_ids.shape
        # A masked position of a row with an unmasked one scores finfo.min, whose softmax weight underflows to exactly
        # 0 (and stays 0 through dropout), so it adds nothing to the pooled value or to any gradient: it is dropped.
        # A row with no unmasked token keeps all its positions, as `forward` spreads uniform weight over them.
        kept = token_mask | ~token_mask.any(dim=1, keepdim=True)
        type_index, position_index = kept.nonzero(as_tuple=True)  # (positions,)
        pieces, inverse = torch.unique(token_ids[type_index, position_index], return_inverse=True)
        piece_embeddings = embedding_matrix[pieces]  # (pieces, hidden)
        query = self._head_queries()
        key_weight = self.key.weight.view(self.num_heads, self.head_size, -1)  # rows of head h: W_k,h
        folded_weight = torch.einsum("hdi,hd->ih", key_weight, query)  # (hidden, heads): W_k,h^T q_h
        folded_bias = (self.key.bias.view(self.num_heads, self.head_size) * query).sum(-1)  # (heads,): b_k,h . q_h
        piece_scores = (piece_embeddings @ folded_weight + folded_bias) / math.sqrt(self.head_size)
        piece_values = self.value(piece_embeddings).view(-1, self.num_heads, self.head_size)
        # Softmax and dropout run on the same dense (types, heads, len) tensor as in `forward`, so a seeded dropout
        # draws the same mask; dropped positions get any score, since the mask overwrites it.
        scores = piece_scores.new_zeros(num_types, length, self.num_heads)
        scores = scores.index_put((type_index, position_index), piece_scores[inverse]).transpose(1, 2)
        weights = self._attention_weights(scores, token_mask)[type_index, :, position_index]  # (positions, heads)
        # The gathers' backward sums the gradients of every position of a piece into its row, as the gradient of
        # `embedding_matrix[token_ids]` sums them into the embedding row under `forward`.
        contributions = weights[..., None] * piece_values[inverse]  # (positions, heads, head_size)
        pooled = contributions.new_zeros(num_types, self.num_heads, self.head_size)
        return self._project(pooled.index_add(0, type_index, contributions))


class MlmTypeSpace(TypePhraseEncoder, TypeSpace):
    """The paper's type space: its only weights are the phrase pool's, kept as `type_encoder.*` as in the reference."""

    attribute = "type_encoder"
    # The MLM output bias trains only under the MLM term (the decoder weight is the tied word embedding).
    auxiliary_parameter_prefixes = MappingProxyType(
        {"mlm": ("cls.predictions.bias", "cls.predictions.decoder.bias"), "nwp": ("nwp_head.",)}
    )

    def mention_vectors(self, model, sequence_output, slot_positions, input_ids):
        """Paper Eq. 1: h_x = LayerNorm(GELU(W h*_x)), the pretrained MLM transform at the typing slot."""
        return model.cls.predictions.transform(gather_positions(sequence_output, slot_positions))

    def encode_types(self, model, phrase_ids, phrase_mask):
        """Phrase pieces embedded with the tied MLM output weights, then pooled: `(num_types, hidden)`."""
        return self.encode_phrases(model.cls.predictions.decoder.weight, phrase_ids, phrase_mask)

    def type_weights(self, model):
        return [model.cls.predictions.decoder.weight, *self.parameters()]

    @torch.no_grad()
    def initialize(self) -> None:
        """A fresh pool starts as the mean of the phrase's word embeddings, layer-normalised: zero keys give uniform
        attention, the value map is the identity and the output map halves what the reference's post-process doubles.
        The reference initialises these maps randomly, which hides the type word from the score until training
        recovers it; starting from the word keeps FiveFine's prior (types are words predicted at the mask) from the
        first step. Keys still learn: their gradient is query x embedding."""
        init.normal_(self.query, mean=0.0, std=0.1)  # reference: randn * 0.1
        init.zeros_(self.head_offset)
        init.zeros_(self.key.weight)
        init.zeros_(self.key.bias)
        init.copy_(self.value.weight, torch.eye(self.value.weight.size(0)))
        init.zeros_(self.value.bias)
        init.copy_(self.output.weight, torch.eye(self.output.weight.size(0)) / 2)
        init.zeros_(self.output.bias)
        # Gain 1/sqrt(hidden): a mention vector and a type vector are both layer-normalised (norm ~sqrt(hidden)), so
        # with gain 1 the first logits are in the hundreds and most of 10k UFET types start "positive"; the sigmoid
        # saturates and BCE spends its first steps crushing every score, prior included. Scaled like attention's
        # q.k / sqrt(d), scores start near unit size; the ranking of types is unchanged.
        init.constant_(self.layer_norm.weight, 1 / math.sqrt(self.layer_norm.weight.size(0)))
        init.zeros_(self.layer_norm.bias)

    def describe_missing_mlm_head(self, name_or_path):
        return logging.WARNING, (
            f"{name_or_path} has no MLM head: the head (whose transform gives FiveFine's mention vector) starts from "
            "random weights and needs training."
        )


__all__ = ["MlmTypeSpace", "TypePhraseEncoder"]
