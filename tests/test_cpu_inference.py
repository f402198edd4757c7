"""`optimize_for_cpu`: bf16 (and compiled bf16) models score as fp32 does, alone and through the pipeline."""

import copy

import pytest
import torch
from tiny import MENTIONS, TINY_LABELS, encode_batch, make_tiny_crossc_model, make_tiny_tokenizer
from transformers import pipeline

from modeling_entity_typing import CPU_MODES, optimize_for_cpu
from modeling_entity_typing.export import cpu_inference


# `tiny.MENTIONS` and three more, of different lengths in one batch (padding included).
MORE = [
    ("The big company of mark twain is in the town.", "big company"),
    ("A writer and author wrote of the city.", "writer"),
    ("Paris", "Paris"),
]
SPANS = MENTIONS + [(text, text.index(mention), text.index(mention) + len(mention)) for text, mention in MORE]


@pytest.fixture(params=["fivefine", "crossc"])
def model_and_tokenizer(request, tiny_model):
    """A tiny random model of each family, in eval mode, with spread scores (not all near 0)."""
    if request.param == "fivefine":
        tokenizer = make_tiny_tokenizer()
        with torch.no_grad():
            tiny_model.type_encoder.layer_norm.weight.mul_(0.05)
        return tiny_model.eval(), tokenizer
    tokenizer = make_tiny_tokenizer()  # Cross-C adds its marker to the tokenizer it is given
    return make_tiny_crossc_model(tokenizer).eval(), tokenizer


def logits_of(model, tokenizer, mentions=SPANS) -> torch.Tensor:
    with torch.no_grad():
        return model(**encode_batch(model, tokenizer, mentions)).logits.float()


def assert_close_to_fp32(expected: torch.Tensor, got: torch.Tensor) -> None:
    """bf16 keeps 8 bits of mantissa: logits within 5% of their spread, and the same top type for every mention."""
    assert expected.std() > 0.02  # real, varied scores, so that the comparison means something
    assert (got - expected).abs().max() < 0.05 * expected.std()
    assert torch.equal(got.argmax(dim=-1), expected.argmax(dim=-1))


def test_bf16_matches_fp32(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    expected = logits_of(model, tokenizer)
    fast = optimize_for_cpu(copy.deepcopy(model).train(), "bf16")
    assert not fast.training and fast.dtype == torch.bfloat16
    assert_close_to_fp32(expected, logits_of(fast, tokenizer))


def test_default_mode_is_bf16_and_the_model_is_changed_in_place(tiny_model):
    assert optimize_for_cpu(tiny_model) is tiny_model and tiny_model.dtype == torch.bfloat16


def test_bf16_through_the_pipeline(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    inputs = [{"text": text, "span": (start, end)} for text, start, end in SPANS]
    options = {"top_k": 3, "threshold": 0.0}
    expected = pipeline("entity-typing", model=model, tokenizer=tokenizer)(inputs, batch_size=4, **options)
    fast_model = optimize_for_cpu(copy.deepcopy(model))
    got = pipeline("entity-typing", model=fast_model, tokenizer=tokenizer)(inputs, batch_size=4, **options)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours["labels"][0]["label"] == theirs["labels"][0]["label"]
        assert abs(ours["labels"][0]["score"] - theirs["labels"][0]["score"]) < 0.01
        assert isinstance(ours["labels"][0]["score"], float)


def test_bf16_pipeline_with_candidate_labels(tiny_model, tiny_tokenizer):
    """FiveFine encodes a call-time label set with the bf16 weights; the type cache keys on the dtype."""
    with torch.no_grad():
        tiny_model.type_encoder.layer_norm.weight.mul_(0.05)
    labels = ["city", "writer", "company", "sports team"]
    expected = pipeline("entity-typing", model=tiny_model.eval(), tokenizer=tiny_tokenizer)(
        "Mark Twain wrote in Paris.", span="Paris", candidate_labels=labels, top_k=4
    )
    fast = pipeline("entity-typing", model=optimize_for_cpu(copy.deepcopy(tiny_model)), tokenizer=tiny_tokenizer)
    got = fast("Mark Twain wrote in Paris.", span="Paris", candidate_labels=labels, top_k=4)
    assert [item["label"] for item in got["labels"]][0] == [item["label"] for item in expected["labels"]][0]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got["labels"], expected["labels"])) < 0.01


@pytest.mark.parametrize("how", ["dtype", "model_kwargs"])
def test_saved_model_loads_in_bf16_through_pipeline_arguments(how, tiny_model, tiny_tokenizer, tmp_path):
    """For a saved folder the pipeline's own arguments give the "bf16" mode's model."""
    tiny_model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    kwargs = {"dtype": torch.bfloat16} if how == "dtype" else {"model_kwargs": {"dtype": torch.bfloat16}}
    typer = pipeline("entity-typing", model=str(tmp_path), **kwargs)
    assert typer.model.dtype == torch.bfloat16
    expected = pipeline("entity-typing", model=tiny_model.eval(), tokenizer=tiny_tokenizer)(
        "Paris is a big city.", span="Paris", top_k=1
    )
    assert typer("Paris is a big city.", span="Paris", top_k=1)["labels"][0]["label"] == expected["labels"][0]["label"]


@pytest.mark.parametrize("mode", ["int8", "fp16", "BF16", "", None, 16])
def test_unknown_mode_names_the_valid_ones(mode, tiny_model):
    with pytest.raises(ValueError, match=r"Unknown mode .* choose one of 'bf16' \(.*\), 'bf16-compiled' \(.*\)"):
        optimize_for_cpu(tiny_model, mode)
    assert tiny_model.dtype == torch.float32  # untouched
    assert sorted(CPU_MODES) == ["bf16", "bf16-compiled"]


def test_rejects_what_is_not_a_model_of_this_package():
    with pytest.raises(TypeError, match="a model of this package .* got Linear"):
        optimize_for_cpu(torch.nn.Linear(2, 2))


def test_rejects_a_model_that_is_not_on_the_cpu(tiny_model):
    with pytest.raises(ValueError, match=r"on meta: call model.to\('cpu'\) first"):
        optimize_for_cpu(tiny_model.to("meta"))


def test_warns_when_the_cpu_has_no_native_bf16(tiny_model, monkeypatch, caplog):
    monkeypatch.setattr(cpu_inference, "cpu_supports_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="modeling_entity_typing.export.cpu_inference"):
        optimize_for_cpu(tiny_model)
    assert "no native bf16 arithmetic" in caplog.text and "slower than fp32" in caplog.text


def test_compiled_mode_without_a_cpp_compiler_says_what_to_do(tiny_model, monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(cpu_inference.shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match=r"needs a C\+\+ compiler .* or use mode='bf16'"):
        optimize_for_cpu(tiny_model, "bf16-compiled")
    assert tiny_model.dtype == torch.float32  # checked before anything changed


@pytest.mark.slow  # torch.compile builds C++ kernels: tens of seconds
def test_bf16_compiled_matches_fp32_alone_and_through_the_pipeline(tiny_model, tiny_tokenizer):
    with torch.no_grad():
        tiny_model.type_encoder.layer_norm.weight.mul_(0.05)
    model = tiny_model.eval()
    expected = logits_of(model, tiny_tokenizer)
    fast = optimize_for_cpu(copy.deepcopy(model), "bf16-compiled")
    assert_close_to_fp32(expected, logits_of(fast, tiny_tokenizer))
    assert_close_to_fp32(expected[:1], logits_of(fast, tiny_tokenizer, SPANS[:1]))  # batch of 1: its own graph
    assert set(fast.state_dict()) == set(model.state_dict())  # compiling in place keeps the checkpoint layout
    result = pipeline("entity-typing", model=fast, tokenizer=tiny_tokenizer)("Paris is big.", span="Paris")
    assert result["labels"][0]["label"] in TINY_LABELS
