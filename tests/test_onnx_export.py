"""ONNX export on the real MiniLM encoder: onnxruntime logits equal PyTorch's, labels equal the pipeline's."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY_LABELS, make_tiny_crossc_model, make_tiny_tokenizer
from transformers import pipeline

from modeling_entity_typing import BertForPhraseTypeTyping, load_mentions
from modeling_entity_typing.calibration import PlattScaling
from modeling_entity_typing.export.onnx_export import OnnxEntityTyper, export_onnx, export_pretrained, pad_mentions


# Exports with torch.onnx (seconds each) and runs onnxruntime: the slow set, which CI runs.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "data" / "demo"
# The 16 fine types of the demo data (the 4 coarse ones are their path prefixes).
FINE_LABELS = sorted(
    {label for labels in load_mentions(DEMO / "train.jsonl")["labels"] for label in labels if label.count("/") == 2}
)


def load_export_script():
    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "examples" / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(real_encoder_path, tmp_path_factory):
    """A real-encoder FiveFine model on the demo's 16 fine types (fresh heads seeded), and its ONNX export."""
    torch.manual_seed(0)
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(real_encoder_path, FINE_LABELS)
    with torch.no_grad():
        # Fresh heads give logits of +-30 (probabilities all 0 or 1); smaller type vectors give logits of about +-4,
        # so the decision rules and the score order are exercised on spread probabilities.
        model.type_encoder.layer_norm.weight.mul_(0.1)
    output_dir = export_onnx(model, tokenizer, tmp_path_factory.mktemp("onnx"))
    return model, tokenizer, output_dir


@pytest.fixture(scope="module")
def typer(exported):
    return OnnxEntityTyper(exported[2], num_threads=2)


@pytest.fixture(scope="module")
def mentions():
    """37 demo test mentions (lengths 12-40 word pieces) and one long text cut to the 128-piece window."""
    test = load_mentions(DEMO / "test.jsonl").select(range(37))
    long_text = "The old bridge was closed for repairs. " * 30 + "Later the band toured Norway."
    start = long_text.index("Norway")
    return [*zip(test["text"], test["start"], test["end"]), (long_text, start, start + len("Norway"))]


@pytest.fixture(scope="module")
def pytorch_outputs(exported, mentions):
    """Logits and mention vectors of the PyTorch model, batches of 8."""
    model, tokenizer, _ = exported
    encoder = model.get_mention_encoder(tokenizer)
    logits, embeddings = [], []
    with torch.no_grad():
        for begin in range(0, len(mentions), 8):
            inputs = pad_mentions(encoder.encode_batch(mentions[begin : begin + 8]), tokenizer, "pt")
            output = model(**inputs)
            logits.append(output.logits)
            embeddings.append(output.mention_embeddings)
    return torch.cat(logits).numpy(), torch.cat(embeddings).numpy()


def test_export_folder_has_dynamic_axes_and_the_label_set(exported, typer):
    model, _, output_dir = exported
    metadata = json.loads((output_dir / "onnx_export.json").read_text())
    assert metadata["labels"] == typer.labels == [model.config.id2label[i] for i in range(16)] == FINE_LABELS
    inputs = {node.name: node.shape for node in typer.session.get_inputs()}
    assert inputs == {
        "input_ids": ["batch", "sequence"],
        "attention_mask": ["batch", "sequence"],
        "mention_positions": ["batch"],
    }
    assert [node.shape for node in typer.session.get_outputs()] == [["batch", 16], ["batch", 384]]


@pytest.mark.parametrize("batch_size", [1, 5, 16])
def test_onnxruntime_logits_match_pytorch(typer, pytorch_outputs, mentions, batch_size):
    expected_logits, expected_embeddings = pytorch_outputs
    got = typer.run(mentions, batch_size=batch_size)
    assert got["logits"].shape == (len(mentions), 16)
    # Real, varied scores (a fresh pool scores at ~1/sqrt(hidden) scale): 500x the tolerance below, so a constant
    # output could not pass by accident.
    assert expected_logits.std() > 0.05
    np.testing.assert_allclose(got["logits"], expected_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["mention_embeddings"], expected_embeddings, atol=1e-4, rtol=0)


@pytest.mark.parametrize("options", [{}, {"decision": "argmax_with_ancestors"}, {"threshold": 0.0, "top_k": 3}])
def test_predictions_equal_the_pipeline(exported, typer, mentions, options):
    model, tokenizer, _ = exported
    inputs = [{"text": text, "span": (start, end)} for text, start, end in mentions]
    expected = pipeline("entity-typing", model=model, tokenizer=tokenizer)(inputs, batch_size=8, **options)
    got = typer(inputs, batch_size=7, **options)
    assert len(got) == len(expected)
    assert len({result["labels"][0]["label"] for result in got}) > 1  # not one answer for every mention
    assert all(0.0 < item["score"] < 1.0 for result in got for item in result["labels"])  # not saturated
    for ours, theirs in zip(got, expected):
        assert [item["label"] for item in ours["labels"]] == [item["label"] for item in theirs["labels"]]
        np.testing.assert_allclose(
            [item["score"] for item in ours["labels"]], [item["score"] for item in theirs["labels"]], atol=1e-5
        )
        assert {k: ours[k] for k in ("mention", "span", "truncated", "mention_truncated")} == {
            k: theirs[k] for k in ("mention", "span", "truncated", "mention_truncated")
        }
    assert got[-1]["truncated"] and got[-1]["mention"] == "Norway"


def test_single_text_with_a_mention_string(exported, typer):
    model, tokenizer, _ = exported
    text = "Mark Twain wrote most of his novels in Hartford."
    expected = pipeline("entity-typing", model=model, tokenizer=tokenizer)(text, span="Hartford")
    got = typer(text, span="Hartford")
    assert got["span"] == (39, 47) and [x["label"] for x in got["labels"]] == [x["label"] for x in expected["labels"]]


def test_bad_inputs_give_clear_errors(typer, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no exported model .*export_onnx.py"):
        OnnxEntityTyper(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        export_pretrained(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"--model_dir .* \(no config.json there\)"):
        load_export_script().main(["--model_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="reversed"):
        typer("Paris is big.", span=(5, 0))
    with pytest.raises(ValueError, match="does not occur"):
        typer("Paris is big.", span="London")
    with pytest.raises(TypeError, match="goes with a single text"):
        typer([{"text": "Paris is big.", "span": (0, 5)}], span=(0, 5))
    with pytest.raises(ValueError, match="`threshold` is a probability"):
        typer("Paris is big.", span=(0, 5), threshold=2)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        typer.run([("Paris is big.", 0, 5)], batch_size=0)
    assert typer([]) == []


@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("family", ["fivefine", "crossc"])
def test_cli_exports_a_saved_model(family, calibrated, tiny_model, tmp_path):
    """The exported graph scores as the model does, its calibration included (a constant of the graph)."""
    tokenizer = make_tiny_tokenizer()  # Cross-C adds its marker token to the tokenizer it is given
    model = tiny_model if family == "fivefine" else make_tiny_crossc_model(tokenizer)
    if calibrated:
        PlattScaling(0.5, -1.0).write_to(model.config)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    script = load_export_script()
    output_dir = script.main(["--model_dir", str(tmp_path / "model"), "--output_dir", str(tmp_path / "onnx")])
    assert sorted(path.name for path in output_dir.iterdir()) == [
        "config.json",
        "model.onnx",
        "model.onnx.data",
        "onnx_export.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    typer = OnnxEntityTyper(output_dir)
    assert typer.labels == TINY_LABELS and typer.metadata["model_type"] == family
    assert script.max_logit_difference(model.eval(), tokenizer, output_dir) < 1e-4


def test_encoder_type_space_exports_with_the_same_logits(real_encoder_path, mentions, tmp_path):
    """The default type space pools the mention's pieces, found from the ids inside the graph: batches of mixed
    lengths (and the long, cut text) must give PyTorch's logits."""
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(real_encoder_path, FINE_LABELS, type_space="encoder")
    model.eval()
    encoder = model.get_mention_encoder(tokenizer)
    with torch.no_grad():
        expected = torch.cat(
            [model(**pad_mentions(encoder.encode_batch(mentions[i : i + 8]), tokenizer, "pt")).logits
             for i in range(0, len(mentions), 8)]
        ).numpy()  # fmt: skip
    typer = OnnxEntityTyper(export_onnx(model, tokenizer, tmp_path / "onnx"), num_threads=2)
    assert expected.std() > 0.05
    for batch_size in (1, 16):
        got = typer.run(mentions, batch_size=batch_size)
        assert got["logits"].shape == (len(mentions), len(FINE_LABELS))
        np.testing.assert_allclose(got["logits"], expected, atol=1e-4, rtol=0)
