"""Metrics on hand-computed cases, and the offline `evaluate` module."""

import pytest

from modeling_entity_typing.evaluation.scoring import load_typing_metric, loose_macro, typing_scores, with_ancestors


PREDICTIONS = [["/person", "/person/artist"], ["/location"], ["/organization", "/person"]]
REFERENCES = [["/person", "/person/artist"], ["/location", "/location/city"], ["/organization"]]


def test_hand_computed_flat_scores():
    scores = typing_scores(PREDICTIONS, REFERENCES)
    # strict: only mention 1 matches exactly.
    assert scores["strict_accuracy"] == pytest.approx(1 / 3)
    # macro P = mean(2/2, 1/1, 1/2) = 5/6; macro R = mean(2/2, 1/2, 1/1) = 5/6.
    assert scores["macro_precision"] == pytest.approx(5 / 6)
    assert scores["macro_recall"] == pytest.approx(5 / 6)
    assert scores["macro_f1"] == pytest.approx(5 / 6)
    # micro: hits 2 + 1 + 1 = 4; predicted 5; gold 5.
    assert scores["micro_precision"] == pytest.approx(4 / 5)
    assert scores["micro_recall"] == pytest.approx(4 / 5)
    assert scores["micro_f1"] == pytest.approx(4 / 5)
    assert scores["num_mentions"] == 3


def test_macro_precision_skips_mentions_without_prediction():
    # P over the one mention with predictions (1/2); R over both mentions with gold (mean(1, 0) = 1/2).
    precision, recall, f1 = loose_macro([{"a", "b"}, set()], [{"a"}, {"c"}])
    assert (precision, recall, f1) == (0.5, 0.5, 0.5)
    assert typing_scores([[], []], [["a"], ["b"]])["macro_f1"] == 0.0


def test_hierarchical_expansion():
    assert with_ancestors(["/person/artist/author", "/location"]) == {
        "/person",
        "/person/artist",
        "/person/artist/author",
        "/location",
    }
    # Few-NERD style: gold fine type only, prediction a sibling: the coarse level earns partial credit.
    scores = typing_scores([["/person/actor"]], [["/person/athlete"]], hierarchical=True)
    assert scores["macro_f1"] == pytest.approx(0.5) and scores["micro_f1"] == pytest.approx(0.5)
    assert scores["strict_accuracy"] == 0.0
    assert typing_scores([["/person/actor"]], [["/person/athlete"]])["macro_f1"] == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="Got 1 predictions for 2 references"):
        typing_scores([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="No mentions to score"):
        typing_scores([], [])


def test_evaluate_module_offline_matches_the_functions():
    metric = load_typing_metric()
    for prediction, reference in zip(PREDICTIONS, REFERENCES):
        metric.add(predictions=prediction, references=reference)
    assert metric.compute(hierarchical=True) == typing_scores(PREDICTIONS, REFERENCES, hierarchical=True)
    assert metric.compute(predictions=PREDICTIONS, references=REFERENCES) == typing_scores(PREDICTIONS, REFERENCES)


def test_tune_threshold_picks_the_best_macro_f1_on_the_grid():
    import torch

    from modeling_entity_typing.evaluation.scoring import tune_threshold

    labels = ["person", "artist", "city"]
    probabilities = torch.tensor([[0.9, 0.3, 0.01], [0.8, 0.35, 0.02], [0.1, 0.02, 0.6]])
    gold = [["person", "artist"], ["person", "artist"], ["city"]]
    threshold, scores = tune_threshold(probabilities, gold, labels)
    assert threshold == 0.3  # every gold label passes at 0.30 and no wrong one does; 0.35 loses artist once
    assert scores["macro_f1"] == 1.0
    threshold, scores = tune_threshold(probabilities, gold, labels, grid=[0.05, 0.32])
    assert threshold == 0.32 and scores["macro_f1"] < 1.0  # 0.05 adds wrong labels; 0.32 loses one artist
    assert tune_threshold(probabilities, gold, labels, grid=[0.2, 0.25])[0] == 0.25  # a tie goes to the higher one


def test_tune_threshold_scan_equals_scoring_every_threshold_with_decide():
    import torch

    from modeling_entity_typing.decision import decide
    from modeling_entity_typing.evaluation.scoring import THRESHOLD_GRID, tune_threshold

    generator = torch.Generator().manual_seed(0)
    labels = [f"t{index}" for index in range(40)]
    probabilities = torch.rand(60, 40, generator=generator) ** 3
    references = [
        [labels[i] for i in torch.randperm(40, generator=generator)[: 1 + row % 4].tolist()] for row in range(60)
    ]
    references[5] = ["unknown_label", "t1"]  # gold outside the label set still counts in recall
    by_decide = {}
    for threshold in THRESHOLD_GRID:
        predicted = [[item["label"] for item in decide(row, labels, "threshold", threshold)] for row in probabilities]
        by_decide[threshold] = typing_scores(predicted, references)["macro_f1"]
    expected = max(THRESHOLD_GRID, key=lambda threshold: (by_decide[threshold], threshold))
    threshold, scores = tune_threshold(probabilities, references, labels)
    assert threshold == expected
    assert scores["macro_f1"] == pytest.approx(by_decide[expected])
