"""Configuration of FiveFine's `BertForPhraseTypeTyping` (Dai & Zeng, ACL 2023, arXiv 2312.06188).

The config is a `BertConfig` plus the typing fields: the label set (as `id2label` and one phrase per label), the
type-phrase encoder, the prompt template, the auxiliary loss weights and the default decision rule.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import BertConfig


DECISION_RULES = ("threshold", "argmax_with_ancestors")
MASK_PLACEHOLDER = "{mask}"


def check_unique_labels(id2label: dict | None) -> list:
    """The labels of `id2label` in id order; a clear error when one is repeated."""
    labels = list(id2label.values()) if id2label else []
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(f"`id2label` must name each label once; repeated: {repeated}.")
    return labels


@strict
class FiveFineConfig(BertConfig):
    r"""
    Configuration for [`BertForPhraseTypeTyping`]. All BERT fields keep their `BertConfig` meaning.

    Args:
        label_phrases (`list[str]`, *optional*):
            The words the model reads for each label, in label-id order, e.g. `"sports team"` for
            `/organization/sports_team`. Defaults to FiveFine's rule (last path segment, `_` to space) when the label
            set is set.
        label_phrase_token_ids (`list[list[int]]`, *optional*):
            WordPiece ids of each phrase. Written by `set_label_set` so that a saved model scores types without
            needing its tokenizer; not meant to be edited by hand.
        type_attention_heads (`int`, *optional*, defaults to 4):
            Heads of the attention pooler that turns a phrase's token embeddings into one type vector.
        type_attention_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the pooler's attention weights.
        mention_open (`str`, *optional*, defaults to `"["`):
            Text put before the mention.
        type_prompt (`str`, *optional*, defaults to `"] (Type: {mask})"`):
            Text put after the mention; `{mask}` becomes the tokenizer's mask token, the typing slot.
        left_word_prompt, right_word_prompt (`str`, *optional*):
            The neighbor-word-prediction prompts (`"] (Left: {mask})"`, `"] (Right: {mask})"`).
        max_seq_length (`int`, *optional*, defaults to 128):
            Length of a templated input in word pieces, `[CLS]` and `[SEP]` included.
        mlm_loss_weight (`float`, *optional*, defaults to 0.1):
            Weight of the masked-LM loss; 0 switches it off.
        nwp_loss_weight (`float`, *optional*, defaults to 0.1):
            Weight of the neighbor-word-prediction loss; 0 switches it off and the model has no NWP head.
        mlm_probability (`float`, *optional*, defaults to 0.1):
            Share of (non-special) tokens chosen as MLM targets (reference code; BERT used 0.15).
        original_label_weight (`float`, *optional*, defaults to 5.0):
            BCE weight of a weak example's original (distant) labels.
        extra_label_weight (`float`, *optional*, defaults to 1.0):
            BCE weight of labels added by prompting; negatives always weigh 1.
        decision (`str`, *optional*, defaults to `"threshold"`):
            Default rule turning scores into labels: `"threshold"` (ultra-fine typing) or `"argmax_with_ancestors"`
            (hierarchical fine-grained schemas such as `/person/artist`).
        threshold (`float`, *optional*, defaults to 0.5):
            Probability from which a label is predicted under the `"threshold"` rule.
        mask_token_id (`int`, *optional*):
            The tokenizer's mask id, recorded by `from_encoder`, so `forward` finds the typing slot by itself.

    ```python
    >>> from modeling_entity_typing import FiveFineConfig
    >>> config = FiveFineConfig(id2label={0: "/person", 1: "/person/artist"}, decision="argmax_with_ancestors")
    ```
    """

    model_type = "fivefine"

    label_phrases: list[str] | None = None
    label_phrase_token_ids: list[list[int]] | None = None
    type_attention_heads: int = 4
    type_attention_dropout: float = 0.1
    mention_open: str = "["
    type_prompt: str = "] (Type: {mask})"
    left_word_prompt: str = "] (Left: {mask})"
    right_word_prompt: str = "] (Right: {mask})"
    max_seq_length: int = 128
    mlm_loss_weight: float = 0.1
    nwp_loss_weight: float = 0.1
    mlm_probability: float = 0.1
    original_label_weight: float = 5.0
    extra_label_weight: float = 1.0
    decision: Literal["threshold", "argmax_with_ancestors"] = "threshold"
    threshold: float = 0.5
    mask_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: index for index, label in self.id2label.items()}

    def validate_type_attention_heads(self):
        if self.type_attention_heads < 1 or self.hidden_size % self.type_attention_heads:
            raise ValueError(
                f"`type_attention_heads` must be a positive divisor of `hidden_size` ({self.hidden_size}), "
                f"got {self.type_attention_heads}."
            )

    def validate_probabilities(self):
        for name in ("type_attention_dropout", "mlm_probability"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"`threshold` is a probability and must be in [0, 1], got {self.threshold!r}.")

    def validate_loss_weights(self):
        for name in ("mlm_loss_weight", "nwp_loss_weight", "original_label_weight", "extra_label_weight"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0 (0 switches the term off), got {value!r}.")

    def validate_prompts(self):
        for name in ("type_prompt", "left_word_prompt", "right_word_prompt"):
            value = getattr(self, name)
            if value.count(MASK_PLACEHOLDER) != 1:
                raise ValueError(
                    f"`{name}` must contain the placeholder {MASK_PLACEHOLDER!r} exactly once (it marks the slot the "
                    f"model predicts), got {value!r}."
                )

    def validate_max_seq_length(self):
        if not 8 <= self.max_seq_length <= self.max_position_embeddings:
            raise ValueError(
                f"`max_seq_length` must be between 8 and `max_position_embeddings` ({self.max_position_embeddings}), "
                f"got {self.max_seq_length}."
            )

    def validate_label_set(self):
        labels = check_unique_labels(self.id2label)
        for name in ("label_phrases", "label_phrase_token_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != len(labels):
                raise ValueError(
                    f"`{name}` must have one entry per label ({len(labels)} labels in `id2label`), got {len(value)}. "
                    "Set labels and phrases together with `model.set_label_set(...)`."
                )
        for index, phrase in enumerate(self.label_phrases or []):
            if not phrase.strip():
                raise ValueError(f"`label_phrases[{index}]` (label {labels[index]!r}) is empty; give it a word.")
        for index, ids in enumerate(self.label_phrase_token_ids or []):
            if not ids:
                raise ValueError(f"`label_phrase_token_ids[{index}]` (label {labels[index]!r}) has no tokens.")


__all__ = ["DECISION_RULES", "FiveFineConfig", "check_unique_labels"]
