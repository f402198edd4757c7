import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from tiny import get_tiny_fivefine_config
from transformers import AutoConfig

from modeling_entity_typing import FiveFineConfig


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
        ({"id2label": {0: "a", 1: "a"}}, r"`id2label` must name each label once; repeated: \['a'\]"),
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
