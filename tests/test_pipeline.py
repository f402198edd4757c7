import copy
import re
import string

import pytest
import torch
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import TINY_LABELS
from transformers import AutoModel, pipeline

from modeling_entity_typing import BertForPhraseTypeTyping, EntityTypingPipeline, label_ancestors


TEXT = "Mark Twain wrote in Paris, and Paris is a big city."
MENTIONS = [
    {"text": TEXT, "span": (0, 10)},
    {"text": TEXT, "span": (20, 25)},
    {"text": "The sports team of Paris is nice.", "span": (4, 15)},
    {"text": "東京 is a big city 😀 é.", "span": (0, 2)},
    {"text": "a " * 100 + "Paris" + " b" * 100, "span": (200, 205)},
    {"text": "Paris", "span": (0, 5)},
    {"text": TEXT, "span": "big city"},
]


def test_pipeline_class_and_output_schema(typer):
    assert isinstance(typer, EntityTypingPipeline)
    result = typer(TEXT, span=(0, 10), threshold=0.0)
    assert set(result) == {"mention", "span", "labels", "truncated", "mention_truncated"}
    assert result["mention"] == "Mark Twain" and result["span"] == (0, 10)
    assert result["truncated"] is False and result["mention_truncated"] is False
    assert sorted(item["label"] for item in result["labels"]) == sorted(TINY_LABELS)
    scores = [item["score"] for item in result["labels"]]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)


def test_scores_are_sigmoid_of_model_logits(typer):
    encoded = typer.mention_encoder.encode(TEXT, 0, 10)
    with torch.no_grad():
        probabilities = typer.model(torch.tensor([encoded.input_ids])).logits[0].sigmoid()
    result = typer(TEXT, span=(0, 10), threshold=0.0)
    by_label = {item["label"]: item["score"] for item in result["labels"]}
    assert [by_label[label] for label in TINY_LABELS] == pytest.approx(probabilities.tolist(), abs=1e-6)


def test_threshold_and_top_k(typer):
    everything = typer(TEXT, span=(0, 10), threshold=0.0)["labels"]
    median = sorted(item["score"] for item in everything)[2]
    above = typer(TEXT, span=(0, 10), threshold=median)["labels"]
    assert above == [item for item in everything if item["score"] >= median]
    assert typer(TEXT, span=(0, 10), threshold=1.0)["labels"] == everything[:1]  # nothing passes: best label
    assert typer(TEXT, span=(0, 10), threshold=0.0, top_k=2)["labels"] == everything[:2]


def test_decision_argmax_with_ancestors_and_config_default(typer):
    best = typer(TEXT, span=(0, 10), threshold=1.0)["labels"][0]["label"]  # threshold 1: only the argmax comes back
    result = typer(TEXT, span=(0, 10), decision="argmax_with_ancestors")["labels"]
    assert {item["label"] for item in result} == {best, *label_ancestors(best)}
    typer.model.config.decision = "argmax_with_ancestors"
    try:
        assert typer(TEXT, span=(0, 10))["labels"] == result
    finally:
        typer.model.config.decision = "threshold"


def test_ancestor_labels_for_a_hierarchical_set(typer):
    labels = ["/organization/sports_team", "/location/city", "/organization", "/location"]
    everything = typer(TEXT, span=(0, 10), candidate_labels=labels, threshold=0.0)["labels"]
    best = everything[0]["label"]
    result = typer(TEXT, span=(0, 10), candidate_labels=labels, decision="argmax_with_ancestors")["labels"]
    assert {item["label"] for item in result} == {best, *label_ancestors(best)}
    scores = {item["label"]: item["score"] for item in everything}
    assert all(item["score"] == pytest.approx(scores[item["label"]]) for item in result)  # ancestors keep own scores


def test_batched_results_equal_single_results(typer):
    single = [typer(item["text"], span=item["span"], threshold=0.0) for item in MENTIONS]
    for batch_size in (2, 3, 7):
        batched = typer(MENTIONS, batch_size=batch_size, threshold=0.0)
        assert len(batched) == len(single)
        for one, other in zip(single, batched):
            assert [x["label"] for x in one["labels"]] == [x["label"] for x in other["labels"]]
            assert [x["score"] for x in one["labels"]] == pytest.approx(
                [x["score"] for x in other["labels"]], abs=1e-5
            )
            assert {k: v for k, v in one.items() if k != "labels"} == {k: v for k, v in other.items() if k != "labels"}


def test_candidate_labels_equal_adopting_the_set_and_leave_model_untouched(typer, tiny_tokenizer):
    candidates = {"writer": "writer author", "town": "town", "team": "sports team"}
    result = typer(MENTIONS, batch_size=3, candidate_labels=candidates, threshold=0.0)
    assert typer.model.config.label_phrases == ["person", "city", "company", "sports team", "time"]
    assert all(sorted(x["label"] for x in r["labels"]) == sorted(candidates) for r in result)
    adopted = copy.deepcopy(typer.model)
    adopted.set_label_set(candidates, tiny_tokenizer)
    reference = pipeline("entity-typing", model=adopted, tokenizer=tiny_tokenizer)(MENTIONS, threshold=0.0)
    for one, other in zip(result, reference):
        assert [x["label"] for x in one["labels"]] == [x["label"] for x in other["labels"]]
        assert [x["score"] for x in one["labels"]] == pytest.approx([x["score"] for x in other["labels"]], abs=1e-5)
    listed = typer(TEXT, span=(0, 10), candidate_labels=["/person/artist", "/location/city"], threshold=0.0)
    assert {x["label"] for x in listed["labels"]} == {"/person/artist", "/location/city"}


def test_mention_string_uses_first_occurrence(typer):
    by_string = typer(TEXT, span="Paris", threshold=0.0)
    assert by_string["span"] == (20, 25)
    assert by_string == typer(TEXT, span=(20, 25), threshold=0.0)


def test_long_text_keeps_the_mention_and_flags_truncation(typer, tiny_tokenizer):
    text = "a " * 300 + "Mark Twain" + " b" * 300
    result = typer(text, span="Mark Twain")
    assert result["mention"] == "Mark Twain" and result["truncated"] and not result["mention_truncated"]
    long_mention = "x " + "a " * 100 + "y"
    result = typer(long_mention, span=(2, len(long_mention) - 2))
    assert result["truncated"] and result["mention_truncated"]
    assert result["mention"] == long_mention[2:-2]


def test_datasets_and_generators_stream(typer):
    rows = [{"text": m["text"], "span": list(m["span"])} for m in MENTIONS if not isinstance(m["span"], str)]
    expected = typer([dict(r, span=tuple(r["span"])) for r in rows], threshold=0.0)
    dataset = Dataset.from_list(rows)
    streamed = list(typer(dataset, batch_size=2, threshold=0.0))
    generated = list(typer((row for row in rows), batch_size=2, threshold=0.0))
    as_tuple = list(typer(tuple(rows), threshold=0.0))
    assert len(as_tuple) == len(rows)
    for got in (streamed, generated, as_tuple):
        assert [r["mention"] for r in got] == [r["mention"] for r in expected]
        for one, other in zip(got, expected):
            assert [x["label"] for x in one["labels"]] == [x["label"] for x in other["labels"]]


def test_unicode_texts_work(typer):
    for text, span in [
        ("東京タワーは高い", (0, 2)),
        ("I ❤️ Paris 😀", "Paris"),
        ("Zoë and José", "Zoë"),
        ("e\u0301cole de Paris", (0, 6)),
        ("Ｐａｒｉｓ", (0, 5)),
    ]:
        result = typer(text, span=span)
        assert result["labels"] and result["mention"] == (span if isinstance(span, str) else text[span[0] : span[1]])


BAD_INPUTS = [
    (dict(inputs=TEXT, span=(0, 100)), ValueError, r"`span` \(0, 100\) is out of range for a text of 51 characters"),
    (dict(inputs=TEXT, span=(-1, 4)), ValueError, r"out of range"),
    (dict(inputs=TEXT, span=(10, 0)), ValueError, r"`span` \(10, 0\) is reversed"),
    (dict(inputs=TEXT, span=(3, 3)), ValueError, r"`span` \(3, 3\) is empty: end is exclusive"),
    (dict(inputs=TEXT, span=(4, 5)), ValueError, r"covers only whitespace \(' '\); point it at a word"),
    (dict(inputs=TEXT, span="Hartford"), ValueError, r"The mention 'Hartford' does not occur in the text"),
    (dict(inputs=TEXT, span="  "), ValueError, r"The mention string `span` is empty or whitespace"),
    (dict(inputs=TEXT, span=(0.0, 4.0)), TypeError, r"`span` must be \(start, end\) character offsets"),
    (dict(inputs=TEXT, span=(0, 4, 5)), TypeError, r"`span` must be \(start, end\)"),
    (dict(inputs=TEXT, span=(True, 4)), TypeError, r"`span` must be \(start, end\)"),
    (dict(inputs=TEXT), TypeError, r"No mention given: pass `span=\(start, end\)`"),
    (dict(inputs=[{"text": 42, "span": (0, 1)}]), TypeError, r"item 0: `text` must be a str, got int\."),
    (dict(inputs=[{"span": (0, 1)}]), TypeError, r"item 0: An input dict needs the key 'text', and 'span' or both"),
    (dict(inputs=[("text", (0, 1))]), TypeError, r"item 0: Each input must be a text with `span=`, or a dict"),
    (dict(inputs=[{"text": TEXT, "span": (0, 4)}], span=(0, 4)), TypeError, r"`span=` goes with a single text"),
    (dict(inputs=TEXT, span=(0, 4), candidate_labels=[]), ValueError, r"The label set is empty"),
    (dict(inputs=TEXT, span=(0, 4), candidate_labels="city"), TypeError, r"`candidate_labels` must be a list"),
    (dict(inputs=TEXT, span=(0, 4), candidate_labels=["a", "a"]), ValueError, r"repeated: \['a'\]"),
    (dict(inputs=TEXT, span=(0, 4), threshold=1.5), ValueError, r"`threshold` is a probability in \[0, 1\], got 1.5"),
    (dict(inputs=TEXT, span=(0, 4), threshold="0.5"), ValueError, r"`threshold` is a probability"),
    (dict(inputs=TEXT, span=(0, 4), top_k=0), ValueError, r"`top_k` must be a positive integer or None"),
    (dict(inputs=TEXT, span=(0, 4), decision="max"), ValueError, r"`decision` must be one of \('threshold', 'argmax"),
    (dict(inputs=TEXT, span=(0, 4), treshold=0.5), TypeError, r"Unknown option\(s\) \['treshold'\]"),
    (dict(inputs="a \u0301 b", span=(2, 3)), ValueError, r"has no word pieces for this tokenizer"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_gets_a_clear_error(typer, call, error, message):
    with pytest.raises(error, match=message):
        typer(**call)


# The families of errors that text and span can produce (values vary, the documented wording does not).
DOCUMENTED = [
    re.compile(pattern)
    for pattern in (
        r"^`span` \(-?\d+, -?\d+\) is out of range for a text of \d+ characters\.$",
        r"^`span` \(-?\d+, -?\d+\) is reversed: start must come before end",
        r"^`span` \(\d+, \d+\) is empty: end is exclusive",
        r"^`span` \(\d+, \d+\) covers only whitespace",
        r"^The mention string `span` is empty or whitespace",
        r"^The mention .* does not occur in the text; pass character offsets instead\.$",
        r"^The mention .* has no word pieces for this tokenizer",
    )
]

PRINTABLE = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(string.printable, max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=PRINTABLE, start=st.integers(-5, 70), length=st.integers(-3, 20), use_string=st.booleans())
def test_random_text_and_spans_only_raise_documented_errors(typer, text, start, length, use_string):
    span = text[max(start, 0) : max(start, 0) + max(length, 0)] if use_string else (start, start + length)
    try:
        result = typer(text, span=span, top_k=2)
    except (ValueError, TypeError) as error:
        assert any(pattern.search(str(error)) for pattern in DOCUMENTED), str(error)
        return
    assert 1 <= len(result["labels"]) <= 2
    start, end = result["span"]
    assert result["mention"] == text[start:end] and result["mention"].strip()


def test_pipeline_follows_a_label_set_changed_on_the_model(_tiny_model, tiny_tokenizer):
    model = copy.deepcopy(_tiny_model).eval()
    typer = pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)
    assert {x["label"] for x in typer(TEXT, span=(0, 10), threshold=0.0)["labels"]} == set(TINY_LABELS)
    for labels in (["town", "writer"], ["team", "author"], ["town", "writer"]):
        model.set_label_set(labels, tiny_tokenizer)
        assert {x["label"] for x in typer(TEXT, span=(0, 10), threshold=0.0)["labels"]} == set(labels)


def test_a_pickle_only_checkpoint_is_refused_with_how_to_convert(_tiny_model, tiny_tokenizer, tmp_path):
    model = copy.deepcopy(_tiny_model)
    model.config.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    refusal = r"holds only PyTorch pickle weights \(pytorch_model\.bin\).* reads safetensors only"
    with pytest.raises(OSError, match=refusal + r".*use_safetensors=False\)\.save_pretrained\("):
        AutoModel.from_pretrained(tmp_path)
    with pytest.raises(OSError, match=refusal):
        BertForPhraseTypeTyping.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=refusal):  # transformers wraps the loader's error, keeping its text
        pipeline("entity-typing", model=str(tmp_path))
    # the opt-out named in the message works, and converting once makes the folder load by default
    BertForPhraseTypeTyping.from_pretrained(tmp_path, use_safetensors=False).save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
