"""Bad inputs to the ONNX typer are handled as the pipeline handles them, by the same checks: a list is checked
whole before onnxruntime runs, `errors="return"` puts `{"index", "error"}` in each bad input's place, and text that
cannot be encoded is named with its offset. One export of the tiny model serves the module."""

import copy
import re

import pytest
from test_onnx_quantization import RecordingSession
from transformers import pipeline

from modeling_entity_typing import EntityTypingInputError
from modeling_entity_typing.export.onnx_export import OnnxEntityTyper, export_onnx


# Exports with torch.onnx: the slow set, which CI runs.
pytestmark = pytest.mark.slow

TEXT = "Mark Twain wrote in Paris, and Paris is a big city."
OK = {"text": TEXT, "span": (0, 10)}
BAD = [
    {"text": TEXT, "span": (50, 60)},
    {"text": None, "span": (0, 1)},
    {"text": "x \ud800 Paris", "span": (4, 9)},
    {"text": "a \u0301 b", "span": (2, 3)},
    "a bare text",
]


@pytest.fixture(scope="module")
def model(_tiny_model):
    return copy.deepcopy(_tiny_model).eval()


@pytest.fixture(scope="module")
def onnx_typer(model, tiny_tokenizer, tmp_path_factory):
    return OnnxEntityTyper(export_onnx(model, tiny_tokenizer, tmp_path_factory.mktemp("onnx")), num_threads=1)


@pytest.fixture(scope="module")
def reference(model, tiny_tokenizer):
    return pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)


def same_labels(ours: dict, theirs: dict) -> bool:
    return [x["label"] for x in ours["labels"]] == [x["label"] for x in theirs["labels"]] and all(
        abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(ours["labels"], theirs["labels"])
    )


def test_a_list_with_bad_items_is_refused_whole_with_the_pipelines_message(onnx_typer, reference, monkeypatch):
    batch = [OK, *BAD, OK]
    with pytest.raises(EntityTypingInputError) as expected:
        reference(batch)
    monkeypatch.setattr(onnx_typer, "session", RecordingSession(onnx_typer.session))
    with pytest.raises(EntityTypingInputError) as caught:
        onnx_typer(batch, batch_size=1)
    assert onnx_typer.session.fed == []  # nothing ran
    assert str(caught.value) == str(expected.value) and caught.value.problems == expected.value.problems
    assert sorted(caught.value.problems) == [1, 2, 3, 4, 5]
    assert str(caught.value).startswith("5 of 7 inputs are invalid, so none was typed.")


@pytest.mark.parametrize("batch_size", [1, 3])
def test_errors_return_types_the_good_items_and_reports_bad_ones_in_place(onnx_typer, reference, batch_size):
    batch = [OK, *BAD, {"text": TEXT, "span": "Paris"}]
    got = onnx_typer(batch, batch_size=batch_size, threshold=0.0, errors="return")
    expected = reference(batch, threshold=0.0, errors="return")
    assert len(got) == len(batch)
    for index in range(1, 6):
        assert got[index] == expected[index] and got[index]["index"] == index
    assert got[3]["error"].startswith("`text` holds the lone surrogate \\ud800 at character 2")
    assert same_labels(got[0], expected[0]) and same_labels(got[6], expected[6]) and got[6]["span"] == (20, 25)
    assert onnx_typer(BAD, errors="return") == reference(BAD, errors="return")  # nothing to type


@pytest.mark.parametrize("item", BAD[:4])
def test_a_single_bad_input_raises_or_comes_back_as_the_pipelines(onnx_typer, reference, item):
    with pytest.raises((TypeError, ValueError)) as expected:
        reference(item)
    with pytest.raises(type(expected.value), match=f"^{re.escape(str(expected.value))}$"):
        onnx_typer(item)
    assert onnx_typer(item, errors="return") == reference(item, errors="return") == {"error": str(expected.value)}


def test_a_single_text_and_a_record_are_typed_as_by_the_pipeline(onnx_typer, reference):
    assert same_labels(onnx_typer(TEXT, span="Paris"), reference(TEXT, span="Paris"))
    record = {"text": TEXT, "start": 20, "end": 25, "labels": ["/location"], "id": "a"}
    assert onnx_typer(record)["span"] == (20, 25) and same_labels(onnx_typer(record), reference(record))


@pytest.mark.parametrize("options", [{"errors": "ignore"}, {"batch_size": "2"}, {"batch_size": 0}])
def test_bad_options_are_named(onnx_typer, options):
    name = next(iter(options))
    with pytest.raises(ValueError, match=rf"^`{name}` must be"):
        onnx_typer([OK], **options)
