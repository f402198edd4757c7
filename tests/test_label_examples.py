"""Label examples: a few examples per label move its type vector towards its mentions, with no training (FiveFine in
the encoder type space), given once with `set_label_set(..., examples=)` or per call with the pipeline's
`label_examples`."""

import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file
from tiny import MENTIONS, TINY_LABELS, encode_batch, make_tiny_crossc_model, make_tiny_model, make_tiny_tokenizer
from transformers import AutoModel, pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)
from modeling_entity_typing import BertForPhraseTypeTyping, FiveFineConfig
from modeling_entity_typing.prototypes import mention_embeddings


EXAMPLES = {
    "person": [{"text": "Mark Twain wrote in Paris.", "span": "Mark Twain"}, ("the writer is big", 4, 10)],
    "/location/city": [("Paris is a big city.", 0, 5)],
}
OTHER_EXAMPLES = {"person": [{"text": "the author is nice", "start": 4, "end": 10}]}
PHRASES = {"person": "person", "/location/city": "city"}


@pytest.fixture
def tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def model(tokenizer):
    """A tiny FiveFine model in the encoder type space, scoring `sigmoid(cos)` so that probabilities stay apart."""
    model = make_tiny_model(tokenizer, type_space="encoder").eval()
    with torch.no_grad():
        model.type_scorer.log_scale.zero_()
        model.type_scorer.bias.zero_()
    return model


def scores(typer, **options) -> dict[str, float]:
    """`{label: score}` of every label for the first mention."""
    result = typer(MENTIONS[0][0], span=MENTIONS[0][1:], threshold=0.0, **options)
    return {item["label"]: item["score"] for item in result["labels"]}


def by_hand(model, tokenizer, examples: dict, weight: float) -> torch.Tensor:
    """The type matrix from the formula: `[normalize(a * phrase + (1 - a) * prototype), 1]` per label with examples,
    `[phrase, 1]` for the others; the phrase mean-pooled by a direct encoder call, the prototype the mean of the unit
    example vectors, both at unit length."""
    rows = []
    for label in TINY_LABELS:
        phrase = model.config.label_phrases[TINY_LABELS.index(label)]
        with torch.no_grad():
            pooled = model.bert(**tokenizer(phrase, return_tensors="pt")).last_hidden_state[0].mean(0)
        vector = F.normalize(pooled, dim=0)
        if label in examples:
            mentions = [model_mention(item) for item in examples[label]]
            units = F.normalize(mention_embeddings(model, tokenizer, mentions)[:, :-1], dim=-1)  # scale, bias off
            prototype = F.normalize(units.mean(0), dim=0)
            vector = F.normalize(weight * vector + (1 - weight) * prototype, dim=0)
        rows.append(torch.cat([vector, torch.ones(1)]))
    return torch.stack(rows)


def model_mention(example) -> tuple[str, int, int]:
    if isinstance(example, tuple):
        return example
    text = example["text"]
    if "span" in example:
        start = text.index(example["span"])
        return text, start, start + len(example["span"])
    return text, example["start"], example["end"]


# ------------------------------------------------------------------------------------------------------ the formula
@pytest.mark.parametrize("weight", [1.0, 0.6, 0.0])
def test_type_vectors_are_the_phrase_and_the_mean_example_mixed(model, tokenizer, weight):
    with torch.no_grad():
        zero_shot = model.type_embeddings().clone()
    model.config.label_example_weight = weight
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    with torch.no_grad():
        types = model.type_embeddings()
    torch.testing.assert_close(types, by_hand(model, tokenizer, EXAMPLES, weight))
    untouched = [TINY_LABELS.index(label) for label in TINY_LABELS if label not in EXAMPLES]
    torch.testing.assert_close(types[untouched], zero_shot[untouched], rtol=0, atol=0)
    if weight == 1.0:
        torch.testing.assert_close(types, zero_shot, rtol=0, atol=0)  # a = 1 is zero-shot typing
    if weight == 0.0:  # a = 0 is the examples' prototype: cosine with the normalized mean of unit mention vectors
        person = F.normalize(mention_embeddings(model, tokenizer, [model_mention(e) for e in EXAMPLES["person"]]))
        prototype = F.normalize(F.normalize(person[:, :-1], dim=-1).mean(0), dim=0)
        torch.testing.assert_close(types[0, :-1], prototype)
    # and the scores are mention vectors times these type vectors, as for every label set
    inputs = encode_batch(model, tokenizer, MENTIONS)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, model.embed_mentions(**inputs) @ types.T)


def test_gradients_reach_the_phrase_side_in_training(model, tokenizer):
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    model.train()
    labels = torch.zeros(len(MENTIONS), len(TINY_LABELS))
    labels[0, 0] = 1
    model(**encode_batch(model, tokenizer, MENTIONS), labels=labels).loss.backward()
    embedding_grad = model.bert.embeddings.word_embeddings.weight.grad
    assert embedding_grad[model.type_phrase_ids[0, 0]].abs().sum() > 0  # "person": a phrase with examples
    assert model.label_example_vectors.grad is None  # the stored examples are data, not weights


# ------------------------------------------------------------------------------------------------ saved with the model
def test_examples_survive_save_and_load(model, tokenizer, tmp_path):
    model.config.label_example_weight = 0.5
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    model.save_pretrained(tmp_path)
    assert set(load_file(str(tmp_path / "model.safetensors"))) >= {"label_example_vectors"}
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.label_example_labels == ["person", "/location/city"]
    assert loaded.config.label_example_weight == 0.5
    inputs = encode_batch(model, tokenizer, MENTIONS)
    with torch.no_grad():
        torch.testing.assert_close(loaded.type_embeddings(), model.type_embeddings(), rtol=0, atol=0)
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_a_model_without_examples_keeps_its_checkpoint_layout(model, tokenizer, tmp_path):
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    model.set_label_set(TINY_LABELS, tokenizer)  # without examples: stored ones are dropped
    assert model.config.label_example_labels is None and model.label_example_vectors is None
    model.save_pretrained(tmp_path)
    assert not [key for key in load_file(str(tmp_path / "model.safetensors")) if "example" in key]


# ------------------------------------------------------------------------------------------------------ per call
def test_the_pipeline_s_label_examples_score_as_stored_examples(model, tokenizer):
    stored = copy.deepcopy(model)
    stored.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    expected = scores(pipeline("entity-typing", model=stored, tokenizer=tokenizer))
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    plain = scores(typer)
    assert scores(typer, label_examples=EXAMPLES) == pytest.approx(expected, abs=1e-6)  # the model's own labels
    assert scores(typer, candidate_labels=TINY_LABELS, label_examples=EXAMPLES) == pytest.approx(expected, abs=1e-6)
    assert scores(typer) == plain  # nothing stayed behind
    assert scores(typer, label_examples=EXAMPLES)["person"] != pytest.approx(plain["person"], abs=1e-4)


def test_call_examples_override_stored_ones_label_by_label(model, tokenizer):
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    model.set_label_set(TINY_LABELS, tokenizer, examples={**EXAMPLES, **OTHER_EXAMPLES})
    expected = scores(typer)
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    assert scores(typer, label_examples=OTHER_EXAMPLES) == pytest.approx(expected, abs=1e-6)
    # candidate labels are a new label set: stored examples do not apply to it
    model.set_label_set(TINY_LABELS, tokenizer)
    without = scores(typer, candidate_labels=TINY_LABELS)
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    assert scores(typer, candidate_labels=TINY_LABELS) == pytest.approx(without, abs=1e-6)


def test_forward_takes_label_example_inputs_for_any_label_set(model, tokenizer):
    inputs = encode_batch(model, tokenizer, MENTIONS)
    new_labels = {"writer": "writer", "city": "city"}
    extra = {**model.label_set_inputs(new_labels, tokenizer)}
    extra.update(model.label_example_inputs({"writer": EXAMPLES["person"]}, tokenizer, new_labels))
    with torch.no_grad():
        logits = model(**inputs, **extra).logits
    model.set_label_set(new_labels, tokenizer, examples={"writer": EXAMPLES["person"]})
    with torch.no_grad():
        torch.testing.assert_close(logits, model(**inputs).logits)


# ------------------------------------------------------------------------------------------------------ the type cache
def test_the_type_cache_is_never_served_across_examples(model, tokenizer):
    inputs = encode_batch(model, tokenizer, MENTIONS)

    def logits(**extra):
        with torch.no_grad():
            return model(**inputs, **extra).logits.clone()

    zero_shot = logits()
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    with_examples = logits()
    assert not torch.allclose(with_examples, zero_shot)
    model.config.label_example_weight = 0.2  # the weight is read at scoring time
    assert not torch.allclose(logits(), with_examples)
    model.set_label_set(TINY_LABELS, tokenizer)
    torch.testing.assert_close(logits(), zero_shot, rtol=0, atol=0)
    # the same phrase inputs with and without examples, in turn
    phrases = model.label_set_inputs(TINY_LABELS, tokenizer)
    examples = model.label_example_inputs(EXAMPLES, tokenizer, TINY_LABELS)
    plain, mixed = logits(**phrases), logits(**phrases, **examples)
    assert not torch.allclose(plain, mixed)
    torch.testing.assert_close(logits(**phrases), plain, rtol=0, atol=0)
    torch.testing.assert_close(logits(**phrases, **examples), mixed, rtol=0, atol=0)


def test_stored_examples_loaded_in_place_are_not_served_stale(model, tokenizer):
    other = copy.deepcopy(model)
    other.set_label_set(TINY_LABELS, tokenizer, examples={**EXAMPLES, **OTHER_EXAMPLES})  # same labels, other vectors
    model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    with torch.no_grad():
        model.type_embeddings()  # cached
        model.label_example_vectors.copy_(other.label_example_vectors)  # no weight changes, only the examples
        torch.testing.assert_close(model.type_embeddings(), other.type_embeddings(), rtol=0, atol=0)


def test_example_vectors_follow_the_weights(model, tokenizer):
    with torch.no_grad():
        before = model.label_example_inputs(EXAMPLES, tokenizer)["type_example_vectors"].clone()
        torch.testing.assert_close(model.label_example_inputs(EXAMPLES, tokenizer)["type_example_vectors"], before)
        model.bert.encoder.layer[0].output.dense.weight.mul_(1.5)  # an in-place write bumps the version
        after = model.label_example_inputs(EXAMPLES, tokenizer)["type_example_vectors"]
    assert not torch.allclose(after, before)


# ------------------------------------------------------------------------------------------------------ capability
def test_only_the_encoder_type_space_supports_examples(tokenizer):
    crossc = make_tiny_crossc_model(make_tiny_tokenizer())
    assert make_tiny_model(tokenizer, type_space="encoder").supports_label_examples is True
    assert make_tiny_model(tokenizer).supports_label_examples is False
    assert crossc.supports_label_examples is False


@pytest.mark.parametrize("family", ["fivefine-mlm", "crossc"])
def test_other_models_refuse_examples_and_say_what_to_do(family):
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer) if family == "fivefine-mlm" else make_tiny_crossc_model(tokenizer)
    message = r"supported only in FiveFine's encoder type space(.|\n)*finetune_fet\.py"
    with pytest.raises(ValueError, match=message):
        model.set_label_set(TINY_LABELS, tokenizer, examples=EXAMPLES)
    assert model.config.label_list() == TINY_LABELS  # refused before anything changed
    with pytest.raises(ValueError, match=message):
        model.label_example_inputs(EXAMPLES, tokenizer)
    typer = pipeline("entity-typing", model=model.eval(), tokenizer=tokenizer)
    with pytest.raises(ValueError, match=message):
        typer(MENTIONS[0][0], span=MENTIONS[0][1:], label_examples=EXAMPLES)


def test_forward_refuses_half_of_the_example_inputs(model, tokenizer):
    inputs = encode_batch(model, tokenizer, MENTIONS)
    rows = model.label_example_inputs(EXAMPLES, tokenizer)["type_example_rows"]
    with pytest.raises(ValueError, match="together"):
        model(**inputs, type_example_rows=rows)


# ------------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("examples", "error", "message"),
    [
        (
            {"river": [("the river", 4, 9)]},
            ValueError,
            r"'river', which is not in the label set \(5 labels: \['person'",
        ),
        ({"person": []}, ValueError, "Label 'person' has an empty example list"),
        ({"person": ("Mark Twain wrote.", 0, 10)}, TypeError, "wrap a single example in a list"),
        ({"person": "Mark Twain"}, TypeError, "must be a list of examples"),
        ([("Mark Twain", 0, 4)], TypeError, r"\{label: \[example, ...\]\} dict"),
        ({}, ValueError, "empty dict"),
        (
            {"person": [("Mark Twain wrote.", 0, 10), ("Mark Twain wrote.", 5, 50)]},
            ValueError,
            r"label 'person', example 1: `span` \(5, 50\) is out of range",
        ),
        ({"/location/city": [{"text": "Paris is big."}]}, ValueError, "label '/location/city', example 0: No mention"),
        ({"person": [("\x00\x01 is here", 0, 2)]}, ValueError, "example 0: The mention '\\\\x00\\\\x01' has no word"),
        ({"person": ["Mark Twain"]}, ValueError, "example 0: In a batch each input is a dict"),
    ],
)
def test_bad_examples_are_named(model, tokenizer, examples, error, message):
    with pytest.raises(error, match=message):
        model.set_label_set(TINY_LABELS, tokenizer, examples=examples)
    assert model.config.label_example_labels is None  # nothing changed


def test_the_pipeline_names_examples_outside_the_model_s_labels(model, tokenizer):
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match=r"'river', which is not in the model's label set(.|\n)*`candidate_labels`"):
        typer(MENTIONS[0][0], span=MENTIONS[0][1:], label_examples={"river": [("the river", 4, 9)]})
    result = typer(
        MENTIONS[0][0],
        span=MENTIONS[0][1:],
        candidate_labels=["river", "person"],
        label_examples={"river": [("the river", 4, 9)]},
    )
    assert {item["label"] for item in result["labels"]} <= {"river", "person"}
    with pytest.raises(ValueError, match="'city', which is not in `candidate_labels`"):
        typer(MENTIONS[0][0], span=MENTIONS[0][1:], candidate_labels=["river"], label_examples={"city": []})


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_the_example_weight_is_a_share(weight):
    with pytest.raises(StrictDataclassClassValidationError, match=r"`label_example_weight`(.|\n)*in \[0, 1\]"):
        FiveFineConfig(type_space="encoder", label_example_weight=weight)


def test_stored_example_labels_are_checked_against_the_config():
    labels = dict(enumerate(["person", "city"]))
    with pytest.raises(StrictDataclassClassValidationError, match="only `type_space='encoder'` uses"):
        FiveFineConfig(id2label=labels, label_example_labels=["person"])
    with pytest.raises(StrictDataclassClassValidationError, match=r"unknown: \['river'\]"):
        FiveFineConfig(id2label=labels, type_space="encoder", label_example_labels=["river"])


# ------------------------------------------------------------------------------------------------------ real encoder
def test_real_encoder_types_from_examples_alone(real_encoder_path, tmp_path):
    # labels named by words that say nothing: only the examples can tell them apart
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(
        real_encoder_path, {"alpha": "alpha", "beta": "beta"}, type_space="encoder", nwp_loss_weight=0.0
    )
    examples = {
        "alpha": [("Lyon is a lovely city.", "Lyon"), ("She moved to Berlin last year.", "Berlin")],
        "beta": [("Ernest Hemingway wrote novels.", "Ernest Hemingway"), ("Marie Curie won prizes.", "Marie Curie")],
    }
    model.config.label_example_weight = 0.2
    model.set_label_set(["alpha", "beta"], tokenizer, examples=examples)
    model.save_pretrained(tmp_path)
    typer = pipeline("entity-typing", model=AutoModel.from_pretrained(tmp_path), tokenizer=tokenizer)
    assert typer("We flew to Madrid.", span="Madrid", top_k=1)["labels"][0]["label"] == "alpha"
    assert typer("Charles Dickens wrote books.", span="Charles Dickens", top_k=1)["labels"][0]["label"] == "beta"


# ------------------------------------------------------------------------------------------------------ the benchmark
def test_the_benchmark_scores_the_model_s_own_types_at_each_weight(model, tokenizer):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_fet_baselines as bench

    records = [
        {"text": text, "start": start, "end": end, "labels": labels}
        for (text, start, end), labels in zip(MENTIONS, [["/person"], ["/location", "/location/city"], ["/other"]])
    ]
    assert bench.label_examples_of(records, "every_label") == {
        "/person": [MENTIONS[0]],
        "/location": [MENTIONS[1]],
        "/location/city": [MENTIONS[1]],
        "/other": [MENTIONS[2]],
    }
    assert bench.label_examples_of(records, "finest_label")["/location/city"] == [MENTIONS[1]]
    assert "/location" not in bench.label_examples_of(records, "finest_label")
    labels = ["/person", "/location", "/location/city", "/other"]
    model.set_label_set(labels, tokenizer, examples=bench.label_examples_of(records, "finest_label"))
    predicted = bench.predicted_at_each_weight(model, bench.mask_vectors(model, tokenizer, records))
    assert sorted(predicted) == list(bench.WEIGHT_GRID)
    # at weight 0 each mention is its finest label's prototype; at weight 1 the pipeline's zero-shot answer
    assert predicted[0.0] == [["/person"], ["/location/city", "/location"], ["/other"]]
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    zero_shot = typer(
        [{"text": t, "span": (s, e)} for t, s, e in MENTIONS],
        candidate_labels=labels,
        decision="argmax_with_ancestors",
    )
    assert predicted[1.0] == [[item["label"] for item in output["labels"]] for output in zero_shot]
