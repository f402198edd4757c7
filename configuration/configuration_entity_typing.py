"""What every family's config shares: the label set (`id2label` with `label2id` always its inverse), the decision
rules, and the field checks and loading rule of the package's configs.

A family's config is `class XConfig(EntityTypingConfigMixin, BertConfig)` with its own fields, including `decision:
DecisionRule` and `threshold`; callers rely on those fields being there (see `modeling_entity_typing.contract`).
"""

import math
from collections.abc import Sequence

from ..decision import DECISION_RULES, DecisionRule


def as_float_field(name: str, value: object, float_fields: Sequence[str]) -> object:
    """An `int` given for a float field becomes a `float` (`threshold=1`, `mlm_loss_weight=0`); other values pass."""
    if name in float_fields and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_finite(config: object, names: Sequence[str]) -> None:
    """Each named field is a finite number: `nan` and `inf` pass every range check and poison losses and scores."""
    for name in names:
        value = getattr(config, name)
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number, got {value!r}.")


def check_labels(labels: Sequence, where: str = "the label set") -> None:
    """Labels are non-empty strings, each once: the rule of every label set, wherever it is given."""
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Label {index} must be a non-empty string, got {label!r} ({where}).")
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(f"Each label must appear once in {where}; repeated: {repeated}.")


def check_unique_labels(id2label: dict | None, label2id: dict | None = None) -> list:
    """The labels of `id2label` in id order; a clear error when an id is missing, a label repeated, or `label2id`
    is not its inverse."""
    if not id2label:
        return []
    ids = sorted(id2label)
    if ids != list(range(len(ids))):
        missing = sorted(set(range(len(ids))) - set(ids))
        beyond = sorted(set(ids) - set(range(len(ids))))
        raise ValueError(
            f"`id2label` must number its {len(ids)} labels 0..{len(ids) - 1} without gaps; id(s) {missing} are "
            f"missing while {beyond} are beyond the end. Renumber the labels (and keep `label2id` and the per-label "
            "lists in the same order), or set the label set with `model.set_label_set(labels, tokenizer)`."
        )
    labels = [id2label[index] for index in ids]
    check_labels(labels, "`id2label`")
    if label2id is not None:
        for index, label in enumerate(labels):
            if label2id.get(label) != index:
                raise ValueError(
                    f"`label2id` must be the inverse of `id2label`: id2label[{index}] = {label!r} but "
                    f"label2id[{label!r}] = {label2id.get(label, 'missing')!r}. Edit both together, or drop "
                    "`label2id` and it is derived from `id2label`."
                )
        if len(label2id) != len(labels):
            extra = sorted(set(label2id) - set(labels))
            raise ValueError(f"`label2id` names labels that `id2label` does not: {extra}; remove them.")
    return labels


def without_locally_served_pipelines(config_dict: dict) -> dict:
    """`config_dict` less the `custom_pipelines` entries that an imported package already serves with the class named.

    A Hub export names its pipeline in `custom_pipelines` so that users without the package can run it as remote
    code. With the package imported, transformers' `pipeline()` would still demand `trust_remote_code=True` for that
    entry, although the registered class, not the folder's code, serves the task: the entry is dropped at load, so
    library mode runs no code from the folder and needs no flag. Without the package, nothing is registered and the
    entry stays.
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    custom = config_dict.get("custom_pipelines")
    if not isinstance(custom, dict) or not custom:
        return config_dict
    kept = {}
    for task, spec in custom.items():
        registered = PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl")
        named = str(spec.get("impl", "")).rsplit(".", 1)[-1] if isinstance(spec, dict) else None
        if registered is None or named != registered.__name__:
            kept[task] = spec
    return (
        {**config_dict, "custom_pipelines": kept}
        if kept
        else {k: v for k, v in config_dict.items() if k != "custom_pipelines"}
    )


class EntityTypingConfigMixin:
    """Label set, loading rule and the field checks shared by every family's config (put it before `BertConfig` in
    the bases). A family lists its float fields in `float_fields` and its shortest input in `min_seq_length`.

    `label2id` is derived from `id2label` here and only here: at construction when it is not given, and by
    `set_labels`, which is how models change their label set.
    """

    float_fields = ()  # a class constant, not a config field
    min_seq_length = 6  # the template's own pieces around an empty context

    def __setattr__(self, name: str, value: object) -> None:
        """Strict field checks, with an `int` for a float field stored as a `float`."""
        super().__setattr__(name, as_float_field(name, value, self.float_fields))

    def validate_finite_numbers(self):
        check_finite(self, self.float_fields)

    def validate_threshold(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"`threshold` is a probability and must be in [0, 1], got {self.threshold!r}.")

    def validate_calibration(self):
        """`calibration_slope` > 0: the Platt scaling of a family's scores must keep every ranking."""
        if not self.calibration_slope > 0:
            raise ValueError(
                "`calibration_slope` must be > 0 (a positive slope keeps each ranking), got "
                f"{self.calibration_slope!r}."
            )

    def validate_label_thresholds(self):
        """`label_thresholds` maps labels of the label set to probabilities: a threshold of their own."""
        overrides = self.label_thresholds or {}
        unknown = [label for label in overrides if label not in (self.label2id or {})]
        if unknown:
            raise ValueError(
                f"`label_thresholds` names {len(unknown)} label(s) outside the label set (e.g. {unknown[0]!r}); it "
                "holds thresholds of the model's own labels. Give labels of `id2label`, or None."
            )
        bad = {label: value for label, value in overrides.items() if not 0.0 <= value <= 1.0}
        if bad:
            raise ValueError(f"`label_thresholds` are probabilities in [0, 1]; got {bad!r:.200}.")

    def validate_max_seq_length(self):
        if not self.min_seq_length <= self.max_seq_length <= self.max_position_embeddings:
            raise ValueError(
                f"`max_seq_length` must be between {self.min_seq_length} and `max_position_embeddings` "
                f"({self.max_position_embeddings}), got {self.max_seq_length}."
            )

    def validate_label_set(self):
        check_unique_labels(self.id2label, self.label2id)

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """`PreTrainedConfig.from_dict`, less the `custom_pipelines` entries this package serves itself."""
        return super().from_dict(without_locally_served_pipelines(config_dict), **kwargs)

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: index for index, label in self.id2label.items()}

    def validate_pad_token_id(self):
        """`pad_token_id` is `None` or an id of the vocabulary. BERT's embedding stops on any other with a bare
        assert, and a negative one would pad with a real token, counted from the end of the vocabulary."""
        pad, vocab_size = self.pad_token_id, self.vocab_size
        if pad is not None and not 0 <= pad < vocab_size:
            raise ValueError(
                f"`pad_token_id` must be None or a token id in [0, {vocab_size}) (`vocab_size` is {vocab_size}), got "
                f"{pad!r}. Set it to the tokenizer's `pad_token_id` (`[PAD]` is 0 in BERT's vocabulary, `<pad>` 1 "
                "in XLM-R's); a checkpoint's config.json with another value was edited or belongs to another model."
            )

    def set_labels(self, labels: Sequence[str]) -> None:
        """Make `labels` (in id order) the label set: `id2label` and its inverse `label2id` together. Thresholds of
        single labels (`label_thresholds`), chosen for the old set, are dropped with a new set."""
        labels = list(labels)
        if labels != self.label_list():
            self.label_thresholds = None
        self.id2label = dict(enumerate(labels))
        self.label2id = {label: index for index, label in enumerate(labels)}

    def scoring_description(self) -> str:  # see `contract.EntityTypingConfig`
        return ""

    def label_list(self) -> list[str]:
        """The labels in id order (empty before a label set is set)."""
        id2label = self.id2label or {}
        return [id2label[index] for index in range(len(id2label))]


__all__ = [
    "DECISION_RULES",
    "DecisionRule",
    "EntityTypingConfigMixin",
    "as_float_field",
    "check_finite",
    "check_labels",
    "check_unique_labels",
    "without_locally_served_pipelines",
]
