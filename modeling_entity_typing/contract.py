"""The contract of a model family: what the pipeline, the training loop, `type_prototypes`, the ONNX export and the Hub
export may use of any model of this package, and all they may use.

A family implements it by subclassing `EntityTypingPreTrainedModel` (whose methods fail with a message until the
family overrides them, and show the documentation written here) and by giving its config `EntityTypingConfigMixin`.
Callers never ask which family a model is (no `hasattr`, no class or `model_type` checks) nor read a family's own
buffers: what differs between families is a capability flag here (`supports_candidate_labels`,
`supports_label_examples`, `supports_type_subsets`) or a value (`head_parameter_prefixes`). One test suite
(`tests/test_family_contract.py`) checks every family against it, and that shared code reads nothing else.
"""

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from transformers import PreTrainedTokenizerBase

from .mention_encoding import EncodedMention
from .modeling_outputs import EntityTypingOutput


@runtime_checkable
class MentionEncoder(Protocol):
    """Turns `(text, start, end)` (character offsets, end exclusive) into a family's model input."""

    max_length: int

    def encode(self, text: str, start: int, end: int) -> EncodedMention:
        """One mention's input ids and the position its vector is read at."""
        ...

    def encode_batch(self, mentions: Sequence[tuple[str, int, int]]) -> list[EncodedMention]:
        """`encode` for many mentions, in one tokenizer call."""
        ...


@runtime_checkable
class EntityTypingConfig(Protocol):
    """The config fields every family has: the label set, the default decision rule and the scores' calibration."""

    model_type: str
    id2label: dict[int, str] | None
    label2id: dict[str, int] | None
    decision: str  # one of `decision.DECISION_RULES`
    threshold: float
    calibration_slope: float  # Platt scaling of the logits (`calibration.PlattScaling`); slope > 0
    calibration_offset: float

    def set_labels(self, labels: Sequence[str]) -> None:
        """Make `labels` (in id order) the label set: `id2label` and `label2id` together."""
        ...

    def label_list(self) -> list[str]:
        """The labels in id order."""
        ...

    def scoring_description(self) -> str:
        """How a mention is scored against a type, one sentence for the model card (empty: the family says it)."""
        ...


@runtime_checkable
class EntityTypingModel(Protocol):
    """A model of any family.

    Scoring: `forward(input_ids, attention_mask, mention_positions=...).logits` is `(batch, num_types)` and equals
    `calibration.calibrated_scores(embed_mentions(...), type_embeddings(), config)`, the dot products through the
    config's Platt scaling (the identity until one is fitted), for the configured label set (so the ONNX export can
    store the type matrix once); probabilities are its sigmoid, labels come from `decision.decide`.
    """

    config: EntityTypingConfig
    # Parameter-name prefixes of the typing head, which the optimiser may give its own learning rate.
    head_parameter_prefixes: tuple[str, ...]
    # Per auxiliary loss term (e.g. "mlm"), prefixes of the parameters only that term trains: frozen when it is off.
    auxiliary_parameter_prefixes: Mapping[str, tuple[str, ...]]
    # Whether `label_set_inputs` works: scoring against labels given at call time, without training.
    supports_candidate_labels: bool
    # Whether examples of a label (`set_label_set(..., examples=)`, `label_example_inputs`) shape its type vector
    # without training; where false, both raise `label_examples.label_examples_unsupported`.
    supports_label_examples: bool
    # Whether `type_subset_inputs` works: scoring some types of the configured set (a type bank's fresh rows,
    # sampled negative types), for families whose type vectors cost an encoder pass each.
    supports_type_subsets: bool

    def set_label_set(
        self,
        labels: Sequence[str] | Mapping[str, str],
        tokenizer: PreTrainedTokenizerBase,
        label_phrases: Sequence[str] | Mapping[str, str] | None = None,
        *,
        examples: Mapping[str, Sequence[Any]] | None = None,
        generator: torch.Generator | None = None,
    ) -> Any:
        """Make `labels` (a list, or `{label: phrase}`) the configured label set, kept by `save_pretrained`, with
        `{label: [example, ...]}` where `supports_label_examples`. A family that draws weights for new labels (rows
        of a type matrix) draws them from `generator`; the others draw nothing."""
        ...

    def label_set_inputs(
        self, labels: Sequence[str] | Mapping[str, str], tokenizer: PreTrainedTokenizerBase
    ) -> dict[str, torch.Tensor]:
        """Keyword arguments for `forward` that score against `labels` instead of the configured set."""
        ...

    def type_subset_inputs(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keyword arguments for `forward` (and `type_embeddings`) that score only the `rows` `(k,)` of the configured
        label set, in that order. Only where `supports_type_subsets`."""
        ...

    def label_example_inputs(
        self,
        examples: Mapping[str, Sequence[Any]],
        tokenizer: PreTrainedTokenizerBase,
        labels: Sequence[str] | Mapping[str, str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Keyword arguments for `forward` that add `{label: [example, ...]}` to the label set scored: `labels`
        (with `label_set_inputs(labels)`), or by default the configured set, whose stored examples they override."""
        ...

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> MentionEncoder:
        """The encoder that turns (text, character span) into this model's input."""
        ...

    def embed_mentions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mention vectors `(batch, dim)`, the ones the types are scored against (`dim` is the hidden size, or one
        more where a family carries a score bias as a last coordinate)."""
        ...

    def type_embeddings(self, **label_set_inputs: torch.Tensor) -> torch.Tensor:
        """Type vectors `(num_types, dim)` of the configured label set, or of the set `label_set_inputs(...)` or
        `type_subset_inputs(...)` name."""
        ...

    def __call__(self, input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> EntityTypingOutput:
        """`forward`: scores, mention vectors and, given targets, the loss."""
        ...

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str | PathLike,
        labels: Sequence[str] | Mapping[str, str],
        *,
        save_directory: str | PathLike | None = None,
        overwrite: bool = False,
        **config_overrides: Any,
    ) -> "EncoderAndTokenizer":
        """A new model of the family on a plain BERT checkpoint (Hub name or path), with the tokenizer its inputs
        need; `config_overrides` set any field of the family's config. With `save_directory` also saved there (a
        folder holding anything is refused, before any weight loads, unless `overwrite`)."""
        ...

    @classmethod
    def for_labels(
        cls,
        name_or_path: str | PathLike,
        labels: Sequence[str] | Mapping[str, str] | None,
        *,
        new_model_overrides: Mapping[str, Any] | None = None,
        label_set_options: Mapping[str, Any] | None = None,
        **config_overrides: Any,
    ) -> "EncoderAndTokenizer":
        """A model of the family typing `labels`: a saved model of the family keeps its weights and takes `labels`
        as its label set (`None` keeps its own); any other BERT checkpoint starts a new model (`from_encoder`, with
        `new_model_overrides` as well). `label_set_options` go to `set_label_set`."""
        ...


class EncoderAndTokenizer(NamedTuple):
    """What a family's `from_encoder` returns: the new model and the tokenizer its inputs need."""

    model: EntityTypingModel
    tokenizer: PreTrainedTokenizerBase


__all__ = ["EncoderAndTokenizer", "EntityTypingConfig", "EntityTypingModel", "MentionEncoder"]
