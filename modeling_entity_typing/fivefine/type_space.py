"""The interface of FiveFine's type spaces: how a mention and a type phrase each become a vector of one space.

`BertForPhraseTypeTyping` scores `mention_vector . type_vector` and leaves both sides to its type space, picked once
from `config.type_space`: the paper's (`mlm_space.MlmTypeSpace`: the MLM head's transform at the typing mask against
phrases pooled by attention over the tied word embeddings) or the encoder's own (`sentence_space.EncoderTypeSpace`:
mean-pooled mention against mean-pooled phrase, `scale * cos + bias`). A space's own weights live in the module; the
encoder and MLM head it reads are the model's, passed in as `model` (so they are not registered twice).
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

import torch
from torch import nn


class TypeSpace(nn.Module):
    """One way of putting mentions and type phrases in one vector space; subclasses fill in every member."""

    # The model attribute the space is kept under, which names its weights in checkpoints (`type_encoder.query`).
    attribute: ClassVar[str]
    # Per auxiliary loss term, the model parameters only that term trains in this space (see the contract).
    auxiliary_parameter_prefixes: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})
    # Whether a label's examples can move its type vector: mentions and phrases must be vectors of one space.
    supports_label_examples: ClassVar[bool] = False
    # Whether each type vector costs an encoder pass, so that a large label set wants a type bank in training.
    encodes_types_with_encoder: ClassVar[bool] = False

    @property
    def head_parameter_prefixes(self) -> tuple[str, ...]:
        """The typing head's parameter prefixes: this space's own weights."""
        return (f"{self.attribute}.",)

    def mention_vectors(
        self, model: nn.Module, sequence_output: torch.Tensor, slot_positions: torch.Tensor, input_ids: torch.Tensor
    ) -> torch.Tensor:
        """`(batch, dim)` mention vectors from the encoder's last hidden states and the typing slot of each row."""
        raise NotImplementedError

    def encode_types(self, model: nn.Module, phrase_ids: torch.Tensor, phrase_mask: torch.Tensor) -> torch.Tensor:
        """`(num_types, dim)` type vectors of padded phrase word pieces (`phrase_mask` is boolean)."""
        raise NotImplementedError

    def type_weights(self, model: nn.Module) -> list[nn.Parameter]:
        """Every weight the type vectors depend on: the type cache is dropped when one of them changes."""
        raise NotImplementedError

    def check_training_terms(self, weights: Mapping[str, float]) -> None:
        """Refuse auxiliary loss terms (`{"mlm": weight, ...}`) this space cannot train with; any by default."""

    def adopt_template(self, config, encoder) -> None:
        """Record (first time) or check what this space needs of the prompt template; nothing by default."""

    def initialize(self) -> None:
        """Set a fresh space's weights (called by the model's `_init_weights`)."""
        raise NotImplementedError

    def describe_missing_mlm_head(self, name_or_path: str) -> tuple[int, str]:
        """What loading an encoder without an MLM head means here, as a `(logging level, message)`."""
        raise NotImplementedError


__all__ = ["TypeSpace"]
