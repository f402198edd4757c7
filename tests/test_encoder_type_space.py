"""FiveFine's `type_space="encoder"`: mention pieces and type phrases mean-pooled in the encoder's own output space."""

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassFieldValidationError
from tiny import MENTIONS, TINY_LABELS, encode_batch, make_tiny_model, make_tiny_tokenizer
from transformers import AutoModel, pipeline

from modeling_entity_typing import BertForPhraseTypeTyping, FiveFineConfig
from modeling_entity_typing.fivefine.sentence_space import (
    EncoderTypeSpace,
    mean_pooled_by_length,
    mention_span_mask,
    with_phrase_boundaries,
)


@pytest.fixture
def model_and_tokenizer():
    tokenizer = make_tiny_tokenizer()
    return make_tiny_model(tokenizer, type_space="encoder").eval(), tokenizer


def _span_tokens(model, tokenizer, text: str, start: int, end: int) -> list[str]:
    encoded = model.get_mention_encoder(tokenizer).encode(text, start, end)
    ids = torch.tensor([encoded.input_ids])
    span = mention_span_mask(
        ids, torch.tensor([encoded.mention_position]), model.config.mention_open_ids, model.config.pieces_before_slot
    )
    return tokenizer.convert_ids_to_tokens(ids[0][span[0]].tolist())


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        ("Mark Twain wrote in Paris.", 0, 10, ["mark", "twain"]),  # at the start of the text
        ("Mark Twain wrote in Paris.", 20, 25, ["paris"]),  # after context
        ("[ Paris ] is a city, Paris.", 21, 26, ["paris"]),  # the open marker in the left context
        ("Paris, Paris.", 7, 12, ["paris"]),  # a repeated mention: the selected occurrence
    ],
)
def test_mention_span_is_the_mention_s_pieces(model_and_tokenizer, text, start, end, expected):
    model, tokenizer = model_and_tokenizer
    assert _span_tokens(model, tokenizer, text, start, end) == expected


def test_mention_containing_the_open_marker_pools_from_its_last_marker(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer  # documented: "[" inside a mention starts the pooled span
    assert _span_tokens(model, tokenizer, "the [ paris ] team", 0, 13) == ["paris", "]"]


def test_inputs_without_the_template_are_rejected(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    ids = torch.tensor([tokenizer("paris is a city")["input_ids"]])
    with pytest.raises(ValueError, match="template"):
        model(input_ids=ids, mention_positions=torch.tensor([3]))


def test_vectors_are_the_mean_pooled_mention_and_phrase(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    inputs = encode_batch(model, tokenizer, MENTIONS[:1])  # "Mark Twain wrote in Paris.", mention "Mark Twain"
    with torch.no_grad():
        hidden = model.bert(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        mention = model.embed_mentions(**inputs)[0]
        types = model.type_embeddings()
        # "person" as the tokenizer encodes the text, [CLS] and [SEP] included, by a direct encoder call
        person = tokenizer("person", return_tensors="pt")
        person_vector = model.bert(**person).last_hidden_state[0].mean(0)
    pieces = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    first = pieces.index("mark")
    assert pieces[first : first + 2] == ["mark", "twain"]
    expected_mention = F.normalize(hidden[0, first : first + 2].mean(0), dim=0) * model.type_scorer.log_scale.exp()
    torch.testing.assert_close(mention[:-1], expected_mention)
    torch.testing.assert_close(mention[-1], model.type_scorer.bias.detach())
    torch.testing.assert_close(types[0], torch.cat([F.normalize(person_vector, dim=0), torch.ones(1)]))
    # the score is scale * cos + bias
    with torch.no_grad():
        logits = model(**inputs).logits[0]
        cos = F.cosine_similarity(hidden[0, first : first + 2].mean(0), person_vector, dim=0)
    torch.testing.assert_close(logits[0], model.type_scorer.log_scale.exp() * cos + model.type_scorer.bias)


def test_multi_piece_phrases_are_wrapped_before_their_padding(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    model.set_label_set({"team": "sports team", "city": "city"}, tokenizer)
    ids, mask = with_phrase_boundaries(model.config, model.type_phrase_ids, model.type_phrase_mask.bool())
    assert tokenizer.convert_ids_to_tokens(ids[0][mask[0]].tolist()) == ["[CLS]", "sports", "team", "[SEP]"]
    assert tokenizer.convert_ids_to_tokens(ids[1][mask[1]].tolist()) == ["[CLS]", "city", "[SEP]"]


def test_gradients_reach_the_encoder_through_both_sides_and_the_scorer(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    model.train()
    inputs = encode_batch(model, tokenizer, MENTIONS)
    labels = torch.zeros(len(MENTIONS), len(TINY_LABELS))
    labels[0, 0] = labels[1, 1] = 1
    model(**inputs, labels=labels).loss.backward()
    assert model.type_scorer.log_scale.grad.abs() > 0 and model.type_scorer.bias.grad.abs() > 0
    embedding_grad = model.bert.embeddings.word_embeddings.weight.grad
    assert embedding_grad[model.type_phrase_ids[0, 0]].abs().sum() > 0  # "person" appears only as a phrase
    assert isinstance(model.type_space, EncoderTypeSpace) and model.head_parameter_prefixes == ("type_scorer.",)
    assert not any(name.startswith("type_encoder.") for name, _ in model.named_parameters())


@pytest.mark.parametrize("fused", [False, True], ids=["default-adamw", "fused-adamw"])
def test_cache_follows_encoder_updates(model_and_tokenizer, fused):
    model, tokenizer = model_and_tokenizer
    inputs = encode_batch(model, tokenizer, MENTIONS)
    with torch.no_grad():
        before = model.type_embeddings().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=fused)
    model(**inputs, labels=torch.ones(len(MENTIONS), len(TINY_LABELS))).loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model.type_embeddings()
        fresh = model.encode_types(model.type_phrase_ids, model.type_phrase_mask)
    assert not torch.allclose(before, after)
    assert torch.equal(after, fresh)


def test_template_ids_are_saved_and_a_foreign_tokenizer_is_refused(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.type_space == "encoder"
    assert loaded.config.mention_open_ids == [tokenizer.convert_tokens_to_ids("[")]
    assert loaded.config.phrase_boundary_ids == [tokenizer.cls_token_id, tokenizer.sep_token_id]
    inputs = encode_batch(loaded, tokenizer, MENTIONS)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)
    loaded.config.mention_open_ids = [tokenizer.convert_tokens_to_ids("(")]
    with pytest.raises(ValueError, match="Use the tokenizer saved with the model"):
        loaded.get_mention_encoder(tokenizer)


def test_type_space_is_validated():
    # a `Literal` field: the strict dataclass names the choices
    with pytest.raises(StrictDataclassFieldValidationError, match=r"'type_space' expected one of \('mlm', 'enc"):
        FiveFineConfig(type_space="sentence")


def test_real_encoder_types_zero_shot_through_the_pipeline(real_encoder_path):
    # all-MiniLM-L6-v2 ships no MLM head; in its own space it types with no training at all.
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(
        real_encoder_path, ["person", "city", "company", "river"], type_space="encoder", nwp_loss_weight=0.0
    )
    assert model.cls.predictions.transform.dense.weight.requires_grad  # present, unused by typing
    typer = pipeline("entity-typing", model=model.eval(), tokenizer=tokenizer)
    sentences = [
        ("Angela Merkel met the press in Berlin on Monday.", "Angela Merkel", "person"),
        ("Angela Merkel met the press in Berlin on Monday.", "Berlin", "city"),
        ("Shares of Siemens rose after the company raised its forecast.", "Siemens", "company"),
        ("Barges carried grain down the Danube for centuries.", "the Danube", "river"),
    ]
    outputs = typer([{"text": text, "span": mention} for text, mention, _ in sentences], top_k=1)
    assert [output["labels"][0]["label"] for output in outputs] == [expected for *_, expected in sentences]


def test_phrases_run_by_length_give_the_padded_batch_s_vectors_and_gradients(model_and_tokenizer):
    """Type phrases are encoded in groups of equal length without padding: an exact speed-up of the padded batch."""
    from modeling_entity_typing.fivefine.sentence_space import masked_mean

    model, _ = model_and_tokenizer
    ids, mask = with_phrase_boundaries(model.config, model.type_phrase_ids, model.type_phrase_mask.bool())
    assert len(set(mask.sum(1).tolist())) > 1  # the tiny label set has phrases of several lengths
    upstream = torch.randn(len(ids), model.config.hidden_size)

    grouped = mean_pooled_by_length(model.bert, ids, mask)
    grouped.backward(upstream)
    grouped_grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    padded = masked_mean(model.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state, mask)
    padded.backward(upstream)
    torch.testing.assert_close(grouped, padded, rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grouped_grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert mean_pooled_by_length(model.bert, ids[:0], mask[:0]).shape == (0, model.config.hidden_size)
