"""Configuration of FiveFine's `BertForPhraseTypeTyping` (Dai & Zeng, ACL 2023, arXiv 2312.06188).

The config is a `BertConfig` plus the typing fields: the label set (as `id2label` and one phrase per label), the
type-phrase encoder, the prompt template, the auxiliary loss weights and the default decision rule.
"""

import hashlib
from collections.abc import Sequence
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from .configuration_entity_typing import (
    DECISION_RULES,
    DecisionRule,
    EntityTypingConfigMixin,
    as_float_field,
    check_finite,
    check_unique_labels,
)


MASK_PLACEHOLDER = "{mask}"
# How mentions and types are compared (`BertForPhraseTypeTyping.type_space`), each with the sentence a model card
# says of it.
TypeSpaceName = Literal["mlm", "encoder"]
_SCORING = {
    "mlm": "the vector at `[MASK]` (through the MLM head) is scored against each type, and each type is a word or\n"
    "phrase read through the model's own word embeddings.",
    "encoder": "in the encoder type space (`type_space: encoder`), the mean of the mention's word\npieces is scored "
    "against each type, and each type is a word or phrase encoded by the same encoder (scale · cosine +\nbias).",
}


def label_phrase_checksum(phrase: str, token_ids: Sequence[int]) -> str:
    """A short hash binding a label's phrase to the token ids it was tokenized into."""
    text = phrase + "\t" + " ".join(str(token_id) for token_id in token_ids)
    return hashlib.blake2s(text.encode("utf-8"), digest_size=4).hexdigest()


@strict
class FiveFineConfig(EntityTypingConfigMixin, BertConfig):
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
        label_phrase_checksums (`list[str]`, *optional*):
            Per label, a hash of its phrase and token ids, written by `set_label_set`. A config whose phrase (or ids)
            was edited afterwards no longer matches it and is rejected, rather than silently scoring the old phrase.
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
        label_thresholds (`dict[str, float]`, *optional*):
            Thresholds of single labels of the model's own label set, over `threshold` (UFET: the general and fine
            types get their own, chosen on dev by `pretrain_ufet.py --threshold_groups`); dropped when the label set
            changes, and not used for labels given at call time.
        mask_token_id (`int`, *optional*):
            The tokenizer's mask id, recorded by `from_encoder`, so `forward` finds the typing slot by itself.
        type_space (`str`, *optional*, defaults to `"mlm"`):
            Where mention and types meet. `"mlm"` (the paper): the MLM head's transform at the typing mask against
            phrases embedded with the MLM output weights and pooled by attention. `"encoder"`: the mean of the
            mention's final hidden states in the template against the mean of the encoder's final hidden states over
            each phrase, scored `scale * cos + bias`; for sentence-embedding encoders, whose mask slot knows little
            and which ship no MLM head (measured in BENCHMARKS.md).
        mention_open_ids, pieces_before_slot, phrase_boundary_ids (*optional*):
            The template's open marker ids, the number of prompt pieces before the typing slot and the tokenizer's
            `[cls, sep]` ids, recorded from the tokenizer by `get_mention_encoder` when `type_space="encoder"`, so
            that `forward` finds the mention's pieces and encodes phrases as the tokenizer would; not meant to be
            edited by hand.
        label_example_weight (`float`, *optional*, defaults to 0.5):
            Under `type_space="encoder"`, the weight `a` of a label's phrase against its examples (given with
            `model.set_label_set(..., examples=...)` or the pipeline's `label_examples`): the label's type vector is
            `normalize(a * phrase + (1 - a) * prototype)`, the phrase vector and the mean of its examples' unit mention
            vectors both at unit length. 1 ignores examples (zero-shot), 0 keeps the examples' prototype alone; in
            [0, 1]. The default had the best mean dev micro-F1 on FiveFine's five OntoNotes 5-shot dev files from
            MiniLM (measured in BENCHMARKS.md); with dev data of your own, choose it there.
        calibration_slope, calibration_offset (`float`, *optional*, default to 1.0 and 0.0):
            Platt scaling of the type scores: the model's logits are `slope * score + offset`, so probabilities mean
            what they say (fitted on dev data by `pretrain_ufet.py --calibrate`; `calibration.PlattScaling`). The slope
            is > 0, so rankings never change; training starts from the identity (1, 0).
        label_example_labels (`list[str]`, *optional*):
            The labels whose mean example vectors the model stores (buffer `label_example_vectors`, in this order),
            written by `set_label_set(..., examples=...)`; not meant to be edited by hand.

    Float fields accept ints (`threshold=1`, `mlm_loss_weight=0`), stored as floats; `nan` and `inf` are rejected.

    ```python
    >>> from modeling_entity_typing import FiveFineConfig
    >>> config = FiveFineConfig(id2label={0: "/person", 1: "/person/artist"}, decision="argmax_with_ancestors")
    ```
    """

    model_type = "fivefine"

    label_phrases: list[str] | None = None
    label_phrase_token_ids: list[list[int]] | None = None
    label_phrase_checksums: list[str] | None = None
    type_attention_heads: int = 4
    type_attention_dropout: float | int = 0.1
    mention_open: str = "["
    type_prompt: str = "] (Type: {mask})"
    left_word_prompt: str = "] (Left: {mask})"
    right_word_prompt: str = "] (Right: {mask})"
    max_seq_length: int = 128
    mlm_loss_weight: float | int = 0.1
    nwp_loss_weight: float | int = 0.1
    mlm_probability: float | int = 0.1
    original_label_weight: float | int = 5.0
    extra_label_weight: float | int = 1.0
    decision: DecisionRule = "threshold"
    threshold: float | int = 0.5
    mask_token_id: int | None = None
    type_space: TypeSpaceName = "mlm"
    mention_open_ids: list[int] | None = None
    pieces_before_slot: int | None = None
    phrase_boundary_ids: list[int] | None = None
    label_example_weight: float | int = 0.5
    label_example_labels: list[str] | None = None
    calibration_slope: float | int = 1.0
    calibration_offset: float | int = 0.0
    label_thresholds: dict[str, float] | None = None

    float_fields = (
        "type_attention_dropout",
        "mlm_loss_weight",
        "nwp_loss_weight",
        "mlm_probability",
        "original_label_weight",
        "extra_label_weight",
        "threshold",
        "label_example_weight",
        "calibration_slope",
        "calibration_offset",
    )

    min_seq_length = 8

    def scoring_description(self) -> str:
        return _SCORING[self.type_space]

    def set_label_phrases(
        self, labels: Sequence[str], phrases: Sequence[str], token_ids: Sequence[Sequence[int]]
    ) -> None:
        """Make `labels` the label set, read as `phrases` tokenized into `token_ids`, with their checksums."""
        self.set_labels(labels)
        self.label_phrases = list(phrases)
        self.label_phrase_token_ids = [list(ids) for ids in token_ids]
        self.label_phrase_checksums = [label_phrase_checksum(p, ids) for p, ids in zip(phrases, token_ids)]

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
        if not 0.0 <= self.label_example_weight <= 1.0:
            raise ValueError(
                "`label_example_weight` is the weight of a label's phrase against its examples and must be in [0, 1] "
                f"(1: the phrase alone, 0: the examples alone), got {self.label_example_weight!r}."
            )

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

    def validate_label_set(self):
        labels = check_unique_labels(self.id2label, self.label2id)
        for name in ("label_phrases", "label_phrase_token_ids", "label_phrase_checksums"):
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
            outside = [token_id for token_id in ids if not 0 <= token_id < self.vocab_size]
            if outside:
                raise ValueError(
                    f"`label_phrase_token_ids[{index}]` (label {labels[index]!r}) holds token id(s) {outside}, "
                    f"outside the vocabulary [0, {self.vocab_size}); these ids are written by "
                    "`model.set_label_set(labels, tokenizer)` with the model's tokenizer: call it again rather than "
                    "editing them."
                )
        self._check_phrase_checksums(labels)
        self._check_example_labels(labels)

    def _check_example_labels(self, labels: list) -> None:
        """The labels with stored examples are labels of the set, each once, and only in the encoder type space."""
        example_labels = self.label_example_labels
        if not example_labels:
            return
        if self.type_space != "encoder":
            raise ValueError(
                f"`label_example_labels` names labels with stored examples, which only `type_space='encoder'` uses, "
                f"but `type_space` is {self.type_space!r}. Remove the field (and the model's `label_example_vectors`)."
            )
        known = set(labels)
        unknown = [label for label in example_labels if label not in known]
        repeated = sorted({label for label in example_labels if example_labels.count(label) > 1})
        if unknown or repeated:
            raise ValueError(
                f"`label_example_labels` must name labels of `id2label`, each once; unknown: {unknown}, repeated: "
                f"{repeated}. It is written by `model.set_label_set(labels, tokenizer, examples=...)`: call it "
                "again rather than editing it."
            )

    def _check_phrase_checksums(self, labels: list) -> None:
        """Phrases and token ids still match what `set_label_set` tokenized (configs without checksums pass)."""
        phrases, token_ids, checksums = self.label_phrases, self.label_phrase_token_ids, self.label_phrase_checksums
        if not (phrases and token_ids and checksums):
            return
        stale = [
            index
            for index, (phrase, ids, checksum) in enumerate(zip(phrases, token_ids, checksums))
            if label_phrase_checksum(phrase, ids) != checksum
        ]
        if stale:
            index = stale[0]
            raise ValueError(
                f"`label_phrases` and `label_phrase_token_ids` disagree for {len(stale)} label(s), first "
                f"{labels[index]!r} (id {index}): its phrase is {phrases[index]!r} but its token ids "
                f"{token_ids[index]} were tokenized from another phrase, so the model would score the old one. "
                "The phrases (or ids) were edited after `set_label_set` wrote them. To use the new phrases, remove "
                "`label_phrase_token_ids` and `label_phrase_checksums` from config.json, load the model and call "
                "`model.set_label_set(list(model.config.id2label.values()), tokenizer, model.config.label_phrases)`, "
                "then save it; otherwise undo the edit."
            )


__all__ = [
    "DECISION_RULES",
    "FiveFineConfig",
    "as_float_field",
    "check_finite",
    "check_unique_labels",
    "label_phrase_checksum",
]
