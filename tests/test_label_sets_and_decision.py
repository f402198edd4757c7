import pytest
import torch

from modeling_entity_typing import LabelSet, decide, default_label_phrase, label_ancestors


@pytest.mark.parametrize(
    "label, phrase",
    [
        ("/person/athlete", "athlete"),
        ("/organization/sports_team", "sports team"),
        ("/other/body_part", "body part"),
        ("person", "person"),
        ("living_thing", "living thing"),
        ("/GPE/", "GPE"),
    ],
)
def test_default_phrase_rule(label, phrase):
    assert default_label_phrase(label) == phrase


def test_label_set_forms():
    assert LabelSet.create(["/a/b_c", "d"]).phrases == ("b c", "d")
    assert LabelSet.create({"/a": "alpha", "/b": "beta"}).phrases == ("alpha", "beta")
    assert LabelSet.create(["/a", "/b"], {"/b": "beta"}).phrases == ("a", "beta")


@pytest.mark.parametrize(
    "labels, phrases, error, message",
    [
        ([], None, ValueError, "The label set is empty"),
        ("person", None, TypeError, "Labels must be a list of strings"),
        (["a", "a"], None, ValueError, r"repeated: \['a'\]"),
        (["a", ""], None, ValueError, "Label 1 must be a non-empty string"),
        (["a", 3], None, ValueError, "Label 1 must be a non-empty string, got 3"),
        (["a", "b"], ["x"], ValueError, "Got 1 phrases for 2 labels"),
        ({"a": " "}, None, ValueError, "The phrase of label 'a' must be a non-empty string"),
    ],
)
def test_label_set_errors(labels, phrases, error, message):
    with pytest.raises(error, match=message):
        LabelSet.create(labels, phrases)


def test_ancestors():
    assert label_ancestors("/person/artist/music") == ["/person", "/person/artist"]
    assert label_ancestors("/person") == [] and label_ancestors("person") == []


LABELS = ["/person", "/person/artist", "/person/artist/music", "/location", "/location/city"]


def test_threshold_rule_keeps_labels_at_or_above_threshold_sorted():
    probabilities = torch.tensor([0.9, 0.2, 0.6, 0.5, 0.1])
    assert [x["label"] for x in decide(probabilities, LABELS, "threshold", 0.5)] == [
        "/person",
        "/person/artist/music",
        "/location",
    ]
    assert decide(probabilities, LABELS, "threshold", 0.5, top_k=1) == [
        {"label": "/person", "score": pytest.approx(0.9)}
    ]


def test_threshold_rule_falls_back_to_the_best_label():
    assert [x["label"] for x in decide(torch.tensor([0.1, 0.3, 0.2, 0.0, 0.0]), LABELS, "threshold", 0.99)] == [
        "/person/artist"
    ]


def test_argmax_with_ancestors_adds_the_path():
    probabilities = torch.tensor([0.4, 0.3, 0.8, 0.5, 0.1])
    result = decide(probabilities, LABELS, "argmax_with_ancestors")
    assert [x["label"] for x in result] == ["/person/artist/music", "/person", "/person/artist"]
    assert [x["score"] for x in result] == pytest.approx([0.8, 0.4, 0.3])
    # An ancestor outside the label set inherits the chosen label's score.
    assert decide(torch.tensor([0.7]), ["/org/company"], "argmax_with_ancestors") == [
        {"label": "/org/company", "score": pytest.approx(0.7)},
        {"label": "/org", "score": pytest.approx(0.7)},
    ]


def test_unknown_decision_rule():
    with pytest.raises(ValueError, match="`decision` must be 'threshold' or 'argmax_with_ancestors', got 'max'"):
        decide(torch.tensor([0.5]), ["a"], "max")
