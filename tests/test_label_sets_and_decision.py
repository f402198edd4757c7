import pytest
import torch

from modeling_entity_typing import LabelSet, decide, default_label_phrase, label_ancestors
from modeling_entity_typing.decision import resolve_rule


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


def test_threshold_rule_without_a_threshold_keeps_the_top_k():
    probabilities = torch.tensor([0.1, 0.3, 0.2, 0.05, 0.25])
    assert [x["label"] for x in decide(probabilities, LABELS, "threshold", None, top_k=3)] == [
        "/person/artist",
        "/location/city",
        "/person/artist/music",
    ]
    assert len(decide(probabilities, LABELS, "threshold", None, top_k=9)) == len(LABELS)
    with pytest.raises(ValueError, match="needs a `threshold`, or `top_k`"):
        decide(probabilities, LABELS, "threshold", None)


# (options, rule under a config of ("threshold", 0.4), rule under a config of ("argmax_with_ancestors", 0.4))
RULES = [
    ({}, ("threshold", 0.4), ("argmax_with_ancestors", None)),  # nothing given: the config's rule
    ({"top_k": 3}, ("threshold", None), ("threshold", None)),  # top_k alone: the k best
    ({"threshold": 0.2}, ("threshold", 0.2), ("threshold", 0.2)),
    ({"threshold": 0.2, "top_k": 3}, ("threshold", 0.2), ("threshold", 0.2)),  # the threshold, then the cap
    ({"decision": "threshold", "top_k": 3}, ("threshold", 0.4), ("threshold", 0.4)),  # named rule, config threshold
    ({"decision": "argmax_with_ancestors"}, ("argmax_with_ancestors", None), ("argmax_with_ancestors", None)),
]


@pytest.mark.parametrize("options, under_threshold_config, under_argmax_config", RULES)
def test_options_resolve_like_transformers_top_k(options, under_threshold_config, under_argmax_config):
    options = {"decision": None, "threshold": None, "top_k": None, **options}
    assert resolve_rule(**options, default_decision="threshold", default_threshold=0.4) == under_threshold_config
    assert resolve_rule(**options, default_decision="argmax_with_ancestors", default_threshold=0.4) == (
        under_argmax_config
    )


def test_a_threshold_with_the_argmax_rule_is_refused():
    with pytest.raises(ValueError, match=r"`threshold` \(0\.3\) applies to decision='threshold' only"):
        resolve_rule("argmax_with_ancestors", 0.3, None, "threshold", 0.5)
