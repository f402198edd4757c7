"""Calibration: Platt scaling fitted on dev data, stored in the config, applied to every score the model gives, and
never changing a ranking or (with the threshold mapped through it) a decision."""

import math

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from tiny import MENTIONS, encode_batch, make_tiny_crossc_model, make_tiny_model, make_tiny_tokenizer
from transformers import AutoModel, pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)
from modeling_entity_typing.calibration import (
    PlattScaling,
    calibration_report,
    expected_calibration_error,
    fit_platt,
    reliability,
    reset_calibration,
    top_k_pairs,
)


def test_fit_recovers_the_scaling_that_generated_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(40_000, generator=generator) * 4
    correct = torch.rand(40_000, generator=generator) < torch.sigmoid(0.4 * logits - 1.0)
    scaling = fit_platt(logits, correct)
    assert scaling.slope == pytest.approx(0.4, abs=0.03) and scaling.offset == pytest.approx(-1.0, abs=0.06)
    before = expected_calibration_error(reliability(logits.sigmoid(), correct))
    after = expected_calibration_error(reliability(scaling.apply(logits).sigmoid(), correct))
    assert after < 0.02 < before


def test_fit_refuses_pairs_of_one_kind():
    with pytest.raises(ValueError, match="both kinds"):
        fit_platt(torch.randn(10), torch.ones(10, dtype=torch.bool))


@pytest.mark.parametrize("slope, offset", [(0.0, 0.0), (-1.0, 0.0), (1.0, math.nan), (math.inf, 0.0)])
def test_scaling_must_be_monotone_and_finite(slope, offset):
    with pytest.raises(ValueError, match="slope > 0"):
        PlattScaling(slope, offset)


def test_mapped_threshold_gives_the_same_decisions():
    scaling = PlattScaling(0.3, -1.2)
    logits = torch.linspace(-8, 8, 1001, dtype=torch.float64)
    for threshold in (0.05, 0.5, 0.95):
        clear = (logits.sigmoid() - threshold).abs() > 1e-9  # a tie at the threshold may round either way
        raw = logits.sigmoid() >= threshold
        calibrated = scaling.apply(logits).sigmoid() >= scaling.probability(threshold)
        assert torch.equal(raw[clear], calibrated[clear])


def test_composition_equals_applying_both():
    first, second, logits = PlattScaling(0.5, 1.0), PlattScaling(2.0, -3.0), torch.randn(50)
    torch.testing.assert_close(first.then(second).apply(logits), second.apply(first.apply(logits)))


def test_reliability_and_ece_by_hand():
    probabilities = torch.tensor([0.05, 0.15, 0.95, 0.95])
    correct = torch.tensor([0, 0, 1, 0])
    curve = reliability(probabilities, correct)
    assert [point["count"] for point in curve] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert curve[9]["accuracy"] == 0.5 and curve[2]["mean_probability"] is None
    assert expected_calibration_error(curve) == pytest.approx((0.05 + 0.15 + 2 * 0.45) / 4)


def test_top_k_pairs_take_each_rows_best_labels():
    logits = torch.tensor([[0.1, 3.0, 2.0], [5.0, -1.0, 0.0]])
    gold = torch.tensor([[False, False, True], [True, False, False]])
    top, correct = top_k_pairs(logits, gold, k=2)
    assert top.tolist() == [3.0, 2.0, 5.0, 0.0] and correct.tolist() == [False, True, True, False]
    report = calibration_report(logits, gold, PlattScaling(), k=2)
    assert report["pairs"] == 4 and sum(point["count"] for point in report["reliability"]) == 4


@pytest.mark.parametrize("family", ["fivefine-mlm", "fivefine-encoder", "crossc"])
def test_config_scaling_rescales_logits_and_keeps_rankings(tiny_tokenizer, family):
    if family == "crossc":
        tiny_tokenizer = make_tiny_tokenizer()  # Cross-C adds its marker token to the tokenizer it is given
        model = make_tiny_crossc_model(tiny_tokenizer).eval()
    else:
        model = make_tiny_model(tiny_tokenizer, type_space=family.partition("-")[2]).eval()
    batch = encode_batch(model, tiny_tokenizer, MENTIONS)
    with torch.no_grad():
        raw = model(**batch).logits
        PlattScaling(0.25, -2.0).write_to(model.config)
        calibrated = model(**batch).logits
    torch.testing.assert_close(calibrated, 0.25 * raw - 2.0)
    assert torch.equal(raw.argsort(dim=-1), calibrated.argsort(dim=-1))


def test_calibration_survives_save_and_load_and_reaches_the_pipeline(tiny_tokenizer, tmp_path):
    model = make_tiny_model(tiny_tokenizer, type_space="encoder").eval()
    with torch.no_grad():
        model.type_scorer.log_scale.zero_()  # sigmoid(cos): scores spread out, not all near 1
    typer = pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)
    text, span = "Mark Twain wrote in Paris.", (0, 10)
    raw = typer(text, span=span, threshold=0.0, top_k=None)["labels"]
    scaling = PlattScaling(0.5, -1.0)
    scaling.write_to(model.config)
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert (loaded.config.calibration_slope, loaded.config.calibration_offset) == (0.5, -1.0)
    calibrated = pipeline("entity-typing", model=str(tmp_path))(text, span=span, threshold=0.0, top_k=None)["labels"]
    assert len(calibrated) == len(model.config.label_list())
    assert [item["label"] for item in calibrated] == [item["label"] for item in raw]  # same ranking
    for before, after in zip(raw, calibrated):
        assert after["score"] == pytest.approx(scaling.probability(before["score"]), abs=1e-5)


def test_config_rejects_a_non_positive_slope(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer)
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="calibration_slope"):
        type(model.config)(**{**model.config.to_dict(), "calibration_slope": 0.0})


def test_training_starts_from_the_identity(tiny_tokenizer, caplog):
    model = make_tiny_model(tiny_tokenizer)
    PlattScaling(0.5, 1.0).write_to(model.config)
    with caplog.at_level("INFO", logger="modeling_entity_typing.calibration"):
        reset_calibration(model.config)
    assert PlattScaling.of(model.config).is_identity and "reset to the identity" in caplog.text
