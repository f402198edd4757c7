"""Cross-C's `MBertForContrastiveTyping`: config, markers (CJK included), mention vector, label sets, prototypes,
Auto classes and the pipeline, on tiny random models and on the real MiniLM encoder."""

import copy

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from tiny import TINY_LABELS, make_tiny_crossc_model, make_tiny_tokenizer
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertModel, pipeline

from modeling_entity_typing import CrossCConfig, MBertForContrastiveTyping, type_prototypes
from modeling_entity_typing.crossc import UNTYPED_LABEL


@pytest.fixture(scope="module")
def _crossc():
    tokenizer = make_tiny_tokenizer()
    return make_tiny_crossc_model(tokenizer).eval(), tokenizer


@pytest.fixture
def crossc(_crossc):
    return copy.deepcopy(_crossc)


def batch(model, tokenizer, mentions, **kwargs):
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions, **kwargs)
    padded = tokenizer.pad({"input_ids": [e.input_ids for e in encoded]}, return_tensors="pt")
    return {**padded, "mention_positions": torch.tensor([e.mention_position for e in encoded])}


def test_config_validates_and_round_trips(tmp_path):
    with pytest.raises(StrictDataclassFieldValidationError):
        CrossCConfig(contrastive_temperature="hot")
    with pytest.raises(Exception, match="contrastive_temperature"):
        CrossCConfig(contrastive_temperature=0.0)
    with pytest.raises(Exception, match="scoring|Literal|cosine"):
        CrossCConfig(scoring="euclid")
    config = CrossCConfig(id2label={0: "person", 1: "city"}, ent_token_id=7, contrastive_denominator="neg")
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is CrossCConfig and loaded.label2id == {"person": 0, "city": 1}
    assert loaded.contrastive_denominator == "neg" and loaded.ent_token_id == 7


def test_marker_template_and_mention_vector(crossc):
    model, tokenizer = crossc
    encoded = model.get_mention_encoder(tokenizer).encode("mark twain wrote in paris .", 0, 10)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens == ["[CLS]", "[ENT]", "mark", "twain", "[ENT]", "wrote", "in", "paris", ".", "[SEP]"]
    assert encoded.mention_position == 1
    inputs = batch(model, tokenizer, [("mark twain wrote in paris .", 0, 10), ("paris is a big city .", 0, 5)])
    output = model(**inputs)
    hidden = model.bert(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    torch.testing.assert_close(output.mention_embeddings, hidden[:, 1])  # the left marker's final state
    torch.testing.assert_close(output.logits, hidden[:, 1] @ model.type_matrix.weight.T)
    assert model.type_matrix.bias is None
    # without explicit positions the first marker is found by id
    torch.testing.assert_close(model(inputs["input_ids"], inputs["attention_mask"]).logits, output.logits)
    torch.testing.assert_close(model.embed_mentions(**inputs) @ model.type_embeddings().T, output.logits)


def test_cjk_text_is_marked_at_character_offsets(crossc):
    model, tokenizer = crossc
    encoder = model.get_mention_encoder(tokenizer)
    text = "東京東京京"
    encoded = encoder.encode(text, 2, 4)  # the second 東京, no spaces anywhere
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens == ["[CLS]", "東", "京", "[ENT]", "東", "京", "[ENT]", "京", "[SEP]"]
    assert encoded.mention_position == 3
    masked = encoder.encode(text, 2, 4, mask_mention=True)
    assert tokenizer.convert_ids_to_tokens(masked.input_ids)[3:6] == ["[ENT]", "[MASK]", "[ENT]"]


def test_marker_text_in_input_is_not_a_marker(crossc):
    model, tokenizer = crossc
    encoded = model.get_mention_encoder(tokenizer).encode("[ENT] paris [ENT] is big", 6, 11)
    assert encoded.input_ids.count(model.config.ent_token_id) == 2
    assert encoded.mention_position == encoded.input_ids.index(model.config.ent_token_id)
    assert encoded.mention_position > 2  # the literal "[ENT]" before it became ordinary word pieces


def test_truncation_keeps_both_markers(crossc):
    model, tokenizer = crossc
    text = "the " * 40 + "paris" + " big" * 40
    start = text.index("paris")
    encoded = model.get_mention_encoder(tokenizer).encode(text, start, start + 5)
    assert len(encoded.input_ids) == model.config.max_seq_length and encoded.context_truncated
    assert encoded.input_ids.count(model.config.ent_token_id) == 2
    position = encoded.mention_position
    assert tokenizer.convert_ids_to_tokens(encoded.input_ids[position : position + 3]) == ["[ENT]", "paris", "[ENT]"]


def test_wrong_tokenizer_is_refused(crossc):
    model, _ = crossc
    with pytest.raises(ValueError, match="marker"):
        model.get_mention_encoder(make_tiny_tokenizer())  # a tokenizer without [ENT]


def test_set_label_set_keeps_known_rows(crossc):
    model, tokenizer = crossc
    old = model.type_matrix.weight.detach().clone()
    model.set_label_set({"time": "time", "planet": "planet", "person": "person"}, tokenizer)
    weight = model.type_matrix.weight
    assert model.config.id2label == {0: "time", 1: "planet", 2: "person"}
    torch.testing.assert_close(weight[0], old[TINY_LABELS.index("time")])
    torch.testing.assert_close(weight[2], old[TINY_LABELS.index("person")])
    assert not any(torch.allclose(weight[1], row) for row in old)
    with pytest.raises(ValueError, match="must appear once"):
        model.set_label_set(["a", "a"])


def test_seeded_new_rows_do_not_depend_on_what_the_model_held(crossc):
    """With equally seeded generators, a label's fresh row is the same whether the model knew other labels or held
    only the untyped placeholder: fine-tuning a pretrained encoder and the plain one start from the same types."""
    model, tokenizer = crossc
    placeholder = copy.deepcopy(model)
    placeholder.set_label_set([UNTYPED_LABEL])
    untyped = copy.deepcopy(placeholder)
    labels = ["planet", "time", "comet"]
    model.set_label_set(labels, tokenizer, generator=torch.Generator().manual_seed(5))
    untyped.set_label_set(labels, tokenizer, generator=torch.Generator().manual_seed(5))
    fresh, known = model.type_matrix.weight, untyped.type_matrix.weight
    torch.testing.assert_close(fresh[0], known[0], rtol=0, atol=0)  # new to both: the same draw
    torch.testing.assert_close(fresh[2], known[2], rtol=0, atol=0)
    assert not torch.equal(fresh[1], known[1])  # "time" was a trained row of `model`: kept, not redrawn
    again = copy.deepcopy(placeholder)
    again.set_label_set([UNTYPED_LABEL, "planet"], generator=torch.Generator().manual_seed(5))
    assert not torch.equal(again.type_matrix.weight[0], placeholder.type_matrix.weight[0])  # never kept
    other = copy.deepcopy(placeholder)
    other.set_label_set(["planet"], generator=torch.Generator().manual_seed(6))
    assert not torch.equal(other.type_matrix.weight[0], known[0])


def test_save_and_load_through_auto_classes(crossc, tmp_path):
    model, tokenizer = crossc
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is MBertForContrastiveTyping
    mentions = [("東京 is a big city .", 0, 2), ("mark twain wrote .", 0, 10)]
    torch.testing.assert_close(
        loaded(**batch(loaded, loaded_tokenizer, mentions)).logits, model(**batch(model, tokenizer, mentions)).logits
    )


def test_bce_loss_and_gradient(crossc):
    model, tokenizer = crossc
    model.train()
    inputs = batch(model, tokenizer, [("paris is big .", 0, 5)])
    labels = torch.zeros(1, len(TINY_LABELS))
    labels[0, 1] = 1
    output = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, labels)
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    assert model.type_matrix.weight.grad.abs().sum() > 0


def test_pipeline_on_a_saved_model_and_zero_shot_prototypes(crossc, tmp_path):
    model, tokenizer = crossc
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    typer = pipeline("entity-typing", model=str(tmp_path))
    result = typer("mark twain wrote in paris .", span="paris", top_k=2)
    assert result["mention"] == "paris" and len(result["labels"]) <= 2
    assert {item["label"] for item in result["labels"]} <= set(TINY_LABELS)
    with pytest.raises(ValueError, match="trained labels"):
        typer("paris is big", span="paris", candidate_labels=["city"])

    examples = {
        "city": [("paris is a big city .", "paris"), ("the town is nice .", "town")],
        "writer": [("mark twain wrote .", "mark twain")],
    }
    prototypes = type_prototypes(model, tokenizer, examples)
    assert set(prototypes) == {"city", "writer"} and prototypes["city"].shape == (model.config.hidden_size,)
    model.set_type_prototypes(prototypes)
    assert model.config.scoring == "cosine"
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    # an example typed against its own prototype set: the nearest prototype is its own type
    top = typer("mark twain wrote .", span="mark twain", decision="argmax_with_ancestors")["labels"][0]
    assert top["label"] == "writer"
    with pytest.raises(ValueError, match="at least one example"):
        type_prototypes(model, tokenizer, {"city": []})


def test_real_encoder_marker_init_and_typing(real_encoder_path, tmp_path):
    """MiniLM gains [ENT] with a row initialised to the mean of its pretrained rows; zero-shot prototypes from three
    examples per type type unseen people and places correctly, after a save and reload."""
    torch.manual_seed(0)
    model, tokenizer = MBertForContrastiveTyping.from_encoder(real_encoder_path, ["person", "location"])
    plain = BertModel.from_pretrained(real_encoder_path)
    old_rows = plain.get_input_embeddings().weight
    ent_id = model.config.ent_token_id
    assert ent_id == old_rows.size(0) == len(tokenizer) - 1
    torch.testing.assert_close(model.get_input_embeddings().weight[ent_id], old_rows.mean(dim=0))
    torch.testing.assert_close(model.get_input_embeddings().weight[:ent_id], old_rows)
    model.eval()
    inputs = batch(model, tokenizer, [("Angela Merkel visited 北京 yesterday.", 22, 24)])
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert tokens[inputs["mention_positions"][0] : inputs["mention_positions"][0] + 4] == [
        "[ENT]",
        "北",
        "京",
        "[ENT]",
    ]
    torch.testing.assert_close(
        model.bert.encoder.layer[5].output.dense.weight, plain.encoder.layer[5].output.dense.weight
    )
    # zero-shot from three example mentions per type: the pretrained encoder must separate people from places, also
    # after a save and reload through the pipeline (a fresh random type matrix would get these right by chance only)
    examples = {
        "person": [("Barack Obama gave a speech in Chicago.", "Barack Obama"), ("It was written by Jane Austen.",
                   "Jane Austen"), ("Marie Curie won two Nobel prizes.", "Marie Curie")],
        "location": [("Barack Obama gave a speech in Chicago.", "Chicago"), ("We flew to Tokyo last week.", "Tokyo"),
                     ("The Nile flows through Egypt.", "Egypt")],
    }  # fmt: skip
    model.set_type_prototypes(type_prototypes(model, tokenizer, examples))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    typer = pipeline("entity-typing", model=str(tmp_path))
    unseen = {
        ("Angela Merkel visited Beijing yesterday.", "Angela Merkel"): "person",
        ("Angela Merkel visited Beijing yesterday.", "Beijing"): "location",
        ("Pablo Picasso painted in Paris.", "Pablo Picasso"): "person",
        ("Pablo Picasso painted in Paris.", "Paris"): "location",
        ("Angela Merkel visited 北京 yesterday.", "北京"): "location",
    }
    outputs = typer([{"text": text, "span": span} for text, span in unseen], decision="argmax_with_ancestors")
    assert [output["labels"][0]["label"] for output in outputs] == list(unseen.values())


def test_head_learning_rate_gets_its_own_group(crossc):
    from modeling_entity_typing.training import build_optimizer

    model, _ = crossc
    optimizer = build_optimizer(model, 1e-4, 0.01, 1e-2, head_parameter_prefixes=model.head_parameter_prefixes)
    head = [group for group in optimizer.param_groups if group["lr"] == 1e-2]
    assert len(head) == 1 and head[0]["params"] == [model.type_matrix.weight]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    assert all(group["lr"] == 1e-4 for group in build_optimizer(model, 1e-4, 0.01).param_groups)
    with pytest.raises(ValueError, match="head_parameter_prefixes"):
        build_optimizer(model, 1e-4, 0.01, head_learning_rate=1e-2)
