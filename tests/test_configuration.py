import math

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from tiny import get_tiny_fivefine_config
from transformers import AutoConfig

from modeling_entity_typing import CrossCConfig, FiveFineConfig


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"threshold": 1.5}, r"`threshold` is a probability and must be in \[0, 1\], got 1.5"),
        (
            {"type_attention_heads": 5},
            r"`type_attention_heads` must be a positive divisor of `hidden_size` \(32\), got 5",
        ),
        ({"type_attention_dropout": 1.0}, r"`type_attention_dropout` must be in \[0, 1\), got 1.0"),
        ({"mlm_probability": -0.1}, r"`mlm_probability` must be in \[0, 1\), got -0.1"),
        ({"mlm_loss_weight": -1.0}, r"`mlm_loss_weight` must be >= 0 \(0 switches the term off\), got -1.0"),
        ({"original_label_weight": -5.0}, r"`original_label_weight` must be >= 0"),
        ({"type_prompt": "] (Type: )"}, r"`type_prompt` must contain the placeholder '\{mask\}' exactly once"),
        ({"left_word_prompt": "{mask} {mask}"}, r"`left_word_prompt` must contain the placeholder"),
        ({"max_seq_length": 65}, r"`max_seq_length` must be between 8 and `max_position_embeddings` \(64\), got 65"),
        ({"id2label": {0: "a", 1: "a"}}, r"Each label must appear once in `id2label`; repeated: \['a'\]"),
        ({"id2label": {0: "a"}, "label_phrases": ["a", "b"]}, r"`label_phrases` must have one entry per label \(1"),
        ({"id2label": {0: "a"}, "label_phrases": [" "]}, r"`label_phrases\[0\]` \(label 'a'\) is empty"),
        (
            {"id2label": {0: "a"}, "label_phrase_token_ids": [[]]},
            r"`label_phrase_token_ids\[0\]` \(label 'a'\) has no",
        ),
    ],
)
def test_invalid_values_name_field_value_and_allowed(overrides, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        get_tiny_fivefine_config(**overrides)


@pytest.mark.parametrize(
    "overrides, field", [({"threshold": "high"}, "threshold"), ({"decision": "argmax"}, "decision")]
)
def test_wrong_types_and_unknown_choices_name_the_field(overrides, field):
    with pytest.raises(StrictDataclassFieldValidationError, match=f"field '{field}'"):
        get_tiny_fivefine_config(**overrides)


def test_defaults_follow_the_reference():
    config = FiveFineConfig()
    assert config.model_type == "fivefine"
    assert (config.type_attention_heads, config.max_seq_length) == (4, 128)
    assert (config.mlm_loss_weight, config.nwp_loss_weight, config.mlm_probability) == (0.1, 0.1, 0.1)
    assert (config.original_label_weight, config.extra_label_weight) == (5.0, 1.0)
    assert config.decision == "threshold"
    assert config.type_prompt == "] (Type: {mask})"


def test_label2id_is_derived_and_roundtrips_through_autoconfig(tmp_path):
    config = get_tiny_fivefine_config(
        id2label={0: "/person", 1: "/person/artist"},
        label_phrases=["person", "artist"],
        decision="argmax_with_ancestors",
    )
    assert config.label2id == {"/person": 0, "/person/artist": 1}
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is FiveFineConfig
    assert loaded.id2label == {0: "/person", 1: "/person/artist"}
    assert loaded.label_phrases == ["person", "artist"]
    assert loaded.decision == "argmax_with_ancestors"
    assert loaded.hidden_size == 32 and loaded.num_hidden_layers == 2


def _crossc_config(**overrides) -> CrossCConfig:
    fields = dict(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37)
    return CrossCConfig(**{**fields, **overrides})


def test_float_fields_accept_ints_as_floats_and_reject_bools(tmp_path):
    config = get_tiny_fivefine_config(threshold=1, mlm_loss_weight=0, nwp_loss_weight=0, original_label_weight=5)
    values = (config.threshold, config.mlm_loss_weight, config.nwp_loss_weight, config.original_label_weight)
    assert values == (1.0, 0.0, 0.0, 5.0) and all(type(value) is float for value in values)
    config.extra_label_weight = 2  # assignment converts too
    assert type(config.extra_label_weight) is float
    config.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).threshold == 1.0
    crossc = _crossc_config(threshold=0, cosine_scale=10, contrastive_temperature=1, mention_mask_probability=1)
    assert all(type(getattr(crossc, name)) is float for name in crossc.float_fields)
    with pytest.raises(StrictDataclassFieldValidationError, match="field 'threshold'"):
        get_tiny_fivefine_config(threshold=True)
    with pytest.raises(StrictDataclassFieldValidationError, match="field 'cosine_scale'"):
        _crossc_config(cosine_scale=False)


def test_int_out_of_range_reports_the_range_not_the_type():
    with pytest.raises(
        StrictDataclassClassValidationError, match=r"`threshold` is a probability .* \[0, 1\], got 2\.0"
    ):
        get_tiny_fivefine_config(threshold=2)
    with pytest.raises(StrictDataclassClassValidationError, match=r"`mlm_loss_weight` must be >= 0 .*got -1\.0"):
        get_tiny_fivefine_config(mlm_loss_weight=-1)
    with pytest.raises(
        StrictDataclassClassValidationError, match=r"`threshold` is a probability .* \[0, 1\], got 3\.0"
    ):
        _crossc_config(threshold=3)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "field", ["mlm_loss_weight", "nwp_loss_weight", "original_label_weight", "extra_label_weight", "threshold"]
)
def test_non_finite_numbers_are_rejected(field, value):
    with pytest.raises(StrictDataclassClassValidationError, match=rf"`{field}` must be a finite number, got {value}"):
        get_tiny_fivefine_config(**{field: value})


@pytest.mark.parametrize("field", ["cosine_scale", "contrastive_temperature", "mention_mask_probability", "threshold"])
def test_non_finite_numbers_are_rejected_by_crossc(field):
    with pytest.raises(StrictDataclassClassValidationError, match=rf"`{field}` must be a finite number, got inf"):
        _crossc_config(**{field: math.inf})


@pytest.mark.parametrize("make", [get_tiny_fivefine_config, _crossc_config], ids=["fivefine", "crossc"])
def test_id2label_with_a_gap_names_the_missing_id(make):
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=r"`id2label` must number its 3 labels 0\.\.2 without gaps; id\(s\) \[2\] are missing while \[3\]",
    ):
        make(id2label={0: "a", 1: "b", 3: "c"})


def test_label2id_must_be_the_inverse_of_id2label():
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=r"must be the inverse of .id2label.: id2label\[0\] = 'a' but label2id\['a'\] = 1",
    ):
        get_tiny_fivefine_config(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0})


@pytest.mark.parametrize("bad_id", [-1, 108, 5000])
def test_phrase_token_ids_outside_the_vocabulary_name_the_label(bad_id):
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=rf"`label_phrase_token_ids\[1\]` \(label 'b'\) holds token id\(s\) \[{bad_id}\], outside the "
        r"vocabulary \[0, 108\).*set_label_set",
    ):
        get_tiny_fivefine_config(
            id2label={0: "a", 1: "b"}, label_phrases=["a", "b"], label_phrase_token_ids=[[5], [6, bad_id]]
        )


@pytest.mark.parametrize("beyond", [0, 5000, None])
@pytest.mark.parametrize("make", [get_tiny_fivefine_config, _crossc_config], ids=["fivefine", "crossc"])
def test_pad_token_id_outside_the_vocabulary_is_named(make, beyond):
    """Was a bare `AssertionError: Padding_idx must be within num_embeddings` from torch when the model was built
    (or, for -1, padding with the last token of the vocabulary)."""
    vocab_size = make().vocab_size
    pad_token_id = -1 if beyond is None else vocab_size + beyond
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=rf"`pad_token_id` must be None or a token id in \[0, {vocab_size}\) \(`vocab_size` is {vocab_size}\), "
        rf"got {pad_token_id}\. Set it to the tokenizer's `pad_token_id`",
    ):
        make(pad_token_id=pad_token_id)
    assert make(pad_token_id=None).pad_token_id is None
    assert make(pad_token_id=vocab_size - 1).pad_token_id == vocab_size - 1
