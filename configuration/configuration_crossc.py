"""Configuration of Cross-C's `MBertForContrastiveTyping` (Han et al., ACL 2022; code: thunlp/CrossET).

A `BertConfig` plus the typing fields: the label set (`id2label`, one row of the type matrix per label), the `[ENT]`
marker, how types are scored, the contrastive pretraining settings and the default decision rule.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from .configuration_entity_typing import DecisionRule, EntityTypingConfigMixin


CONTRASTIVE_DENOMINATORS = ("pos+neg", "neg")


@strict
class CrossCConfig(EntityTypingConfigMixin, BertConfig):
    r"""
    Configuration for [`MBertForContrastiveTyping`]. All BERT fields keep their `BertConfig` meaning.

    Args:
        ent_token (`str`, *optional*, defaults to `"[ENT]"`):
            The marker put on both sides of the mention, added to the tokenizer as a special token.
        ent_token_id (`int`, *optional*):
            Its id, recorded by `from_encoder`; the mention vector is the final hidden state of the first (left)
            marker, found by this id.
        ent_embedding_init (`str`, *optional*, defaults to `"mean"`):
            How `from_encoder` initialises the marker's new embedding row: `"mean"` (mean of the pretrained rows, an
            "average token" of the right scale) or `"normal"` (N(0, `initializer_range`), BERT's init). Set
            explicitly because library defaults for new embedding rows changed over time.
        scoring (`str`, *optional*, defaults to `"dot"`):
            `"dot"`: logit = t·m with a learned, bias-free type matrix (the paper). `"cosine"`: logit =
            `cosine_scale` · cos(t, m), used for zero-shot typing from prototypes (`set_type_prototypes`).
        cosine_scale (`float`, *optional*, defaults to 10.0):
            Scale of cosine scores (an inverse temperature).
        max_seq_length (`int`, *optional*, defaults to 128):
            Length of a marked input in word pieces, `[CLS]`, `[SEP]` and both markers included.
        contrastive_temperature (`float`, *optional*, defaults to 0.5):
            τ of the contrastive objective (paper: 0.5; the reference code's `normalize·2` is an effective 0.25).
        contrastive_denominator (`str`, *optional*, defaults to `"pos+neg"`):
            `"pos+neg"` (the paper's Eq. 7) or `"neg"` (the reference code's form), kept as an ablation.
        mention_mask_probability (`float`, *optional*, defaults to 0.5):
            In contrastive pretraining, the chance that a mention is replaced by one `[MASK]` (paper: 0.5).
        decision (`str`, *optional*, defaults to `"threshold"`):
            Default rule turning scores into labels (see `modeling_entity_typing.decide`).
        threshold (`float`, *optional*, defaults to 0.5):
            Probability from which a label is predicted under the `"threshold"` rule (reference code: 0.4).
        label_thresholds (`dict[str, float]`, *optional*):
            Thresholds of single labels of the label set, over `threshold` (as in FiveFine's config).
        mask_token_id (`int`, *optional*):
            The tokenizer's mask id (mention masking in pretraining).
        calibration_slope, calibration_offset (`float`, *optional*, default to 1.0 and 0.0):
            Platt scaling of the scores (`calibration.PlattScaling`), as in FiveFine's config: logits are
            `slope * score + offset`, slope > 0, so rankings never change.

    Float fields accept ints (`threshold=1`, `cosine_scale=10`), stored as floats; `nan` and `inf` are rejected.
    """

    model_type = "crossc"

    ent_token: str = "[ENT]"
    ent_token_id: int | None = None
    ent_embedding_init: Literal["mean", "normal"] = "mean"
    scoring: Literal["dot", "cosine"] = "dot"
    cosine_scale: float | int = 10.0
    max_seq_length: int = 128
    contrastive_temperature: float | int = 0.5
    contrastive_denominator: Literal["pos+neg", "neg"] = "pos+neg"
    mention_mask_probability: float | int = 0.5
    decision: DecisionRule = "threshold"
    threshold: float | int = 0.5
    mask_token_id: int | None = None
    calibration_slope: float | int = 1.0
    calibration_offset: float | int = 0.0
    label_thresholds: dict[str, float] | None = None

    float_fields = (
        "cosine_scale",
        "contrastive_temperature",
        "mention_mask_probability",
        "threshold",
        "calibration_slope",
        "calibration_offset",
    )

    def validate_ranges(self):
        if not self.contrastive_temperature > 0:
            raise ValueError(f"`contrastive_temperature` must be > 0, got {self.contrastive_temperature!r}.")
        if not self.cosine_scale > 0:
            raise ValueError(f"`cosine_scale` must be > 0, got {self.cosine_scale!r}.")
        if not 0.0 <= self.mention_mask_probability <= 1.0:
            raise ValueError(f"`mention_mask_probability` must be in [0, 1], got {self.mention_mask_probability!r}.")


__all__ = ["CONTRASTIVE_DENOMINATORS", "CrossCConfig"]
