import pytest
from tiny import get_tiny_fivefine_config, make_tiny_tokenizer

from modeling_entity_typing import PromptTemplateEncoder


@pytest.fixture
def encoder(tiny_tokenizer):
    return PromptTemplateEncoder(tiny_tokenizer, get_tiny_fivefine_config(max_seq_length=32))


def test_template_reads_left_bracketed_mention_type_prompt_right(encoder, tiny_tokenizer):
    encoded = encoder.encode("Mark Twain wrote in Paris.", 0, 10)
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens == [
        "[CLS]",
        "[",
        "mark",
        "twain",
        "]",
        "(",
        "type",
        ":",
        "[MASK]",
        ")",
        "wrote",
        "in",
        "paris",
        ".",
        "[SEP]",
    ]
    assert tokens[encoded.mention_position] == "[MASK]"
    assert not encoded.truncated


@pytest.mark.parametrize("prompt, word", [("left", "left"), ("right", "right")])
def test_neighbor_word_prompts_and_targets(encoder, tiny_tokenizer, prompt, word):
    encoded = encoder.encode("The city Paris is big.", 9, 14, prompt=prompt)
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[encoded.mention_position - 3 : encoded.mention_position + 1] == ["(", word, ":", "[MASK]"]
    assert tiny_tokenizer.convert_ids_to_tokens([encoded.left_neighbor_id, encoded.right_neighbor_id]) == [
        "city",
        "is",
    ]
    edge = encoder.encode("Paris", 0, 5, prompt=prompt)
    assert (edge.left_neighbor_id, edge.right_neighbor_id) == (
        tiny_tokenizer.cls_token_id,
        tiny_tokenizer.sep_token_id,
    )


def test_text_spelling_special_tokens_does_not_create_them(encoder, tiny_tokenizer):
    encoded = encoder.encode("a [MASK] and [SEP] of Paris", 22, 27)
    assert encoded.input_ids.count(tiny_tokenizer.mask_token_id) == 1
    assert encoded.input_ids.count(tiny_tokenizer.sep_token_id) == 1


def test_long_context_is_windowed_evenly_around_the_whole_mention(encoder, tiny_tokenizer):
    left, right = "a " * 40, " b" * 40
    text = left + "Mark Twain" + right
    encoded = encoder.encode(text, len(left), len(left) + 10)
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert len(encoded.input_ids) == 32
    assert encoded.context_truncated and not encoded.mention_truncated
    assert ["mark", "twain"] == tokens[tokens.index("[") + 1 : tokens.index("]")]
    assert abs(tokens.count("a") - tokens.count("b")) <= 1


def test_context_longer_than_the_model_maximum_raises_no_false_length_warning():
    """The context is tokenised whole and windowed afterwards, so the tokenizer's "longer than the maximum ... will
    result in indexing errors" warning would be a false alarm on every long sentence."""
    tokenizer = make_tiny_tokenizer()
    tokenizer.model_max_length = 32  # as `from_encoder` sets it to `max_seq_length`
    encoder = PromptTemplateEncoder(tokenizer, get_tiny_fivefine_config(max_seq_length=32))
    left = "a " * 40
    assert len(encoder.encode(left + "Mark Twain", len(left), len(left) + 10).input_ids) == 32
    assert not tokenizer.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum")


def test_short_side_lends_its_budget(encoder, tiny_tokenizer):
    text = "Paris" + " b" * 60
    encoded = encoder.encode(text, 0, 5)
    assert len(encoded.input_ids) == 32 and encoded.context_truncated
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[1] == "[" and tokens.count("b") == 32 - 10  # [CLS] [ paris ] ( type : [MASK] ) ... [SEP]


def test_mention_longer_than_budget_is_truncated_and_flagged(encoder):
    text = "x " + "a " * 50 + "y"
    encoded = encoder.encode(text, 2, len(text) - 2)
    assert len(encoded.input_ids) == 32
    assert encoded.mention_truncated and encoded.truncated


def test_cjk_without_spaces_and_unknown_scripts_encode(encoder, tiny_tokenizer):
    encoded = encoder.encode("東京は大きい", 0, 2)
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[1:4] == ["[", "東", "京"]


def test_prompt_without_single_mask_token_is_rejected(tiny_tokenizer):
    config = get_tiny_fivefine_config(type_prompt="] {mask} [MASK]")
    with pytest.raises(ValueError, match=r"must tokenise to exactly one mask token, got 2"):
        PromptTemplateEncoder(tiny_tokenizer, config)
