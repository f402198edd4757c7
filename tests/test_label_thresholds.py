"""Thresholds of single labels (`config.label_thresholds`): chosen per group of types on dev (UFET's general, fine and
ultra-fine types), stored in the config, applied by the pipeline to the model's own labels only."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from tiny import TINY_LABELS, make_tiny_model
from transformers import pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)
from modeling_entity_typing.decision import decide, own_thresholds
from modeling_entity_typing.evaluation.scoring import tune_group_thresholds, tune_threshold


def test_decide_takes_a_threshold_per_label():
    probabilities = torch.tensor([0.7, 0.6, 0.2])
    labels = ["a", "b", "c"]
    thresholds = own_thresholds(0.5, {"b": 0.65, "c": 0.1}, labels)
    assert thresholds.tolist() == pytest.approx([0.5, 0.65, 0.1])
    assert [item["label"] for item in decide(probabilities, labels, "threshold", thresholds)] == ["a", "c"]
    assert own_thresholds(0.5, None, labels) == 0.5 and own_thresholds(0.5, {}, labels) == 0.5


def test_group_thresholds_find_what_a_single_threshold_cannot():
    """Group 0 is right from 0.6 up, group 1 only from 0.96 up: one threshold must trade one group for the other."""
    generator = torch.Generator().manual_seed(0)
    labels = [f"g{i}" for i in range(4)] + [f"u{i}" for i in range(20)]
    rows, references = [], []
    for _ in range(200):
        row = torch.rand(24, generator=generator) * 0.5
        row[4:][torch.rand(20, generator=generator) < 0.3] = 0.9  # wrong ultra-fine types between 0.6 and 0.95
        general, ultra = (int(torch.randint(size, (1,), generator=generator)) for size in (4, 20))
        row[general] = 0.6 + 0.3 * float(torch.rand(1, generator=generator))
        row[4 + ultra] = 0.96 + 0.03 * float(torch.rand(1, generator=generator))
        rows.append(row)
        references.append([labels[general], labels[4 + ultra]])
    probabilities = torch.stack(rows)
    _, single = tune_threshold(probabilities, references, labels)
    thresholds, grouped = tune_group_thresholds(probabilities, references, labels, [4], start=0.5)
    assert thresholds[0] <= 0.6 and thresholds[1] > 0.9
    assert grouped["macro_f1"] == pytest.approx(1.0) and grouped["macro_f1"] > single["macro_f1"]
    with pytest.raises(ValueError, match="Threshold groups 24 must be positive sizes that leave labels"):
        tune_group_thresholds(probabilities, references, labels, [24], start=0.5)


def test_config_checks_label_thresholds_and_drops_them_with_a_new_label_set(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer)
    config = model.config
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="outside the label set"):
        type(config)(**{**config.to_dict(), "label_thresholds": {"no such label": 0.5}})
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match=r"probabilities in \[0, 1\]"):
        type(config)(**{**config.to_dict(), "label_thresholds": {TINY_LABELS[0]: 1.5}})
    config.label_thresholds = {TINY_LABELS[0]: 0.9}
    config.set_labels(TINY_LABELS)  # the same set: kept
    assert config.label_thresholds == {TINY_LABELS[0]: 0.9}
    model.set_label_set(TINY_LABELS[:3], tiny_tokenizer)  # a new set: chosen for the old one, dropped
    assert model.config.label_thresholds is None


def test_pipeline_applies_label_thresholds_to_its_own_labels_only(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer, type_space="encoder").eval()
    with torch.no_grad():
        model.type_scorer.log_scale.zero_()  # sigmoid(cos): scores spread out
    typer = pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)
    text, span = "Mark Twain wrote in Paris.", (0, 10)
    scores = {item["label"]: item["score"] for item in typer(text, span=span, threshold=0.0)["labels"]}
    model.config.threshold = 1.0  # nothing passes ...
    low = sorted(scores, key=scores.get)[:2]
    model.config.label_thresholds = {label: 0.0 for label in low}  # ... but these two labels, with their own
    assert sorted(item["label"] for item in typer(text, span=span)["labels"]) == sorted(low)
    phrases = {label: label.rsplit("/", 1)[-1] for label in TINY_LABELS}
    typed = typer(text, span=span, candidate_labels=phrases)["labels"]
    assert len(typed) == 1  # candidate labels: the config's one threshold, so only the best label
