"""ONNX export options of the fast CPU path: the int8 export loads and types, and agrees with fp32 on CPUs with and
without VNNI; batches are padded to their longest."""

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY_LABELS, encode_batch

from modeling_entity_typing.export import onnx_export
from modeling_entity_typing.export.onnx_export import OnnxEntityTyper, export_onnx, pad_mentions


ROOT = Path(__file__).resolve().parents[1]
# Lengths from 4 to 20 words, shuffled, so that every batch of 2 or 3 has a different longest row.
MENTIONS = [
    (text, 0, text.index(" "))
    for text in [
        "paris is big .",
        "mark twain wrote in the city of paris and the town of the big company and the sports team .",
        "twain wrote .",
        "the company of mark twain is in the town , and the city is big and nice .",
        "paris , the city .",
        "a writer of the city wrote in paris .",
        "time is nice .",
    ]
]


@pytest.fixture(scope="module")
def spread_model(_tiny_model):
    """The tiny FiveFine model in eval mode (its fresh type pool gives logits of about +-1: spread probabilities)."""
    return copy.deepcopy(_tiny_model).eval()


@pytest.fixture(scope="module")
def fp32_export(spread_model, tiny_tokenizer, tmp_path_factory):
    return export_onnx(spread_model, tiny_tokenizer, tmp_path_factory.mktemp("fp32"))


@pytest.fixture(scope="module")
def int8_export(spread_model, tiny_tokenizer, tmp_path_factory):
    return export_onnx(spread_model, tiny_tokenizer, tmp_path_factory.mktemp("int8"), quantize="int8")


class RecordingSession:
    """An onnxruntime session that keeps the shape of every input it is fed."""

    def __init__(self, session):
        self.session, self.fed = session, []

    def run(self, output_names, feed):
        self.fed.append({name: value.shape for name, value in feed.items()})
        return self.session.run(output_names, feed)


def test_pad_mentions_pads_to_the_longest_in_the_batch(spread_model, tiny_tokenizer):
    encoded = spread_model.get_mention_encoder(tiny_tokenizer).encode_batch(MENTIONS[:3])
    lengths = [len(e.input_ids) for e in encoded]
    for return_tensors in ("pt", "np"):
        batch = pad_mentions(encoded, tiny_tokenizer, return_tensors)
        assert tuple(batch["input_ids"].shape) == (3, max(lengths))
        assert max(lengths) < spread_model.config.max_seq_length
        assert batch["attention_mask"].sum(1).tolist() == lengths


def test_unknown_quantization_names_the_valid_ones(spread_model, tiny_tokenizer, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown quantize='int4'; choose one of \['int8'\]"):
        export_onnx(spread_model, tiny_tokenizer, tmp_path, quantize="int4")
    assert not any(tmp_path.iterdir())  # nothing exported


@pytest.mark.slow  # exports with torch.onnx
@pytest.mark.parametrize("batch_size", [2, 3])
def test_onnx_batches_are_padded_to_their_longest_not_to_max_length(fp32_export, spread_model, batch_size):
    typer = OnnxEntityTyper(fp32_export)
    typer.session = RecordingSession(typer.session)
    got = typer.run(MENTIONS, batch_size=batch_size)["logits"]
    lengths = [len(e.input_ids) for e in typer.mention_encoder.encode_batch(MENTIONS)]
    expected_widths = [max(lengths[begin : begin + batch_size]) for begin in range(0, len(MENTIONS), batch_size)]
    assert [fed["input_ids"] for fed in typer.session.fed] == [
        (len(lengths[begin : begin + batch_size]), width)
        for begin, width in zip(range(0, len(MENTIONS), batch_size), expected_widths)
    ]
    assert len(set(expected_widths)) > 1 and max(expected_widths) < spread_model.config.max_seq_length
    # the padding changes nothing: each mention alone gives the same logits
    alone = np.concatenate([typer.run([mention])["logits"] for mention in MENTIONS])
    np.testing.assert_allclose(got, alone, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_int8_export_loads_and_types(int8_export, spread_model, tiny_tokenizer):
    assert sorted(path.name for path in int8_export.iterdir()) == [
        "config.json",
        "model.onnx",
        "onnx_export.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]  # one file: the int8 graph is small enough to need no external data
    metadata = json.loads((int8_export / "onnx_export.json").read_text())
    assert metadata["quantization"]["mode"] == "int8"
    assert metadata["quantization"]["method"] == "onnxruntime.quantization.quantize_dynamic"
    typer = OnnxEntityTyper(int8_export)
    assert typer.metadata["quantization"] == metadata["quantization"]
    assert any(node.op_type == "DynamicQuantizeLinear" for node in _graph_nodes(int8_export))

    with torch.no_grad():
        expected = spread_model(**encode_batch(spread_model, tiny_tokenizer, MENTIONS)).logits.numpy()
    got = typer.run(MENTIONS, batch_size=4)["logits"]
    assert expected.std() > 0.5  # spread scores
    # Quantized: close, not equal. The fp32 export matches to 1e-4 (tests/test_onnx_export.py).
    assert np.abs(got - expected).max() < 0.1 * expected.std()
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.99

    result = typer("mark twain wrote in paris .", span="paris", top_k=2)
    assert result["mention"] == "paris" and [item["label"] in TINY_LABELS for item in result["labels"]] == [True] * 2


# Scores an exported graph on stored inputs; run by qemu-x86_64 under an emulated CPU (numpy and onnxruntime only).
SCORE_GRAPH = """
import sys, numpy as np, onnxruntime
feed = dict(np.load(sys.argv[1]))
session = onnxruntime.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], session.run(["logits"], feed)[0])
"""


def require_qemu() -> str:
    """qemu-x86_64 (Debian's qemu-user): a skip in a user's clone without it, a failure under CI (`.ci/run` installs
    it)."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None and os.environ.get("CI"):
        pytest.fail("the int8 test on an emulated CPU needs qemu-x86_64 (apt-get install qemu-user): CI provides it")
    if qemu is None:
        pytest.skip("needs qemu-x86_64 (apt-get install qemu-user) to run onnxruntime on a CPU without VNNI")
    return qemu


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["EPYC-Rome", "Haswell"])  # AMD and Intel CPUs with AVX2, without AVX-512 and VNNI
def test_int8_export_agrees_with_fp32_on_a_cpu_without_vnni(int8_export, spread_model, tiny_tokenizer, cpu, tmp_path):
    """onnxruntime picks its int8 kernels from the CPUID it sees, so under qemu's emulated CPU the arithmetic is that
    CPU's (without VNNI, uint8 x int8 pair sums saturate in 16 bits unless the weights leave room)."""
    qemu = require_qemu()
    with torch.no_grad():
        expected = spread_model(**encode_batch(spread_model, tiny_tokenizer, MENTIONS)).logits.numpy()
    feed = pad_mentions(spread_model.get_mention_encoder(tiny_tokenizer).encode_batch(MENTIONS), tiny_tokenizer, "np")
    np.savez(tmp_path / "feed.npz", **{name: value.astype(np.int64) for name, value in feed.items()})
    command = [qemu, "-cpu", cpu, sys.executable, "-c", SCORE_GRAPH, str(tmp_path / "feed.npz")]
    subprocess.run([*command, str(int8_export / "model.onnx"), str(tmp_path / "got.npy")], check=True, timeout=300)
    got = np.load(tmp_path / "got.npy")
    assert np.abs(got - expected).max() < 0.1 * expected.std()
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.99


@pytest.mark.slow
def test_int8_export_records_and_warns_about_its_agreement_on_this_cpu(
    spread_model, tiny_tokenizer, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(onnx_export, "INT8_AGREEMENT_BOUND", 0.0)  # any difference at all counts as poor
    with caplog.at_level("WARNING", logger=onnx_export.logger.name):
        folder = export_onnx(spread_model, tiny_tokenizer, tmp_path / "int8", quantize="int8")
    agreement = json.loads((folder / "onnx_export.json").read_text())["quantization"]["agreement"]
    assert agreement["mentions"] == len(onnx_export._PROBE_MENTIONS)
    assert agreement["cpu"]["model"] and isinstance(agreement["cpu"]["flags"], list)
    assert 0 < agreement["max_abs_logit_difference"] < 0.1 and 0 <= agreement["same_top_type"] <= 1
    assert "answers differently from the fp32 model" in caplog.text and agreement["cpu"]["model"] in caplog.text
    # the recorded difference is the one between the two graphs on the probe mentions
    probes = spread_model.get_mention_encoder(tiny_tokenizer).encode_batch(onnx_export._PROBE_MENTIONS)
    with torch.no_grad():
        expected = spread_model(**pad_mentions(probes, tiny_tokenizer, "pt")).logits.numpy()
    got = OnnxEntityTyper(folder).run(onnx_export._PROBE_MENTIONS)["logits"]
    assert np.abs(got - expected).max() == pytest.approx(agreement["max_abs_logit_difference"], abs=2e-4)


def _graph_nodes(export_dir: Path):
    import onnx

    return onnx.load(str(export_dir / "model.onnx"), load_external_data=False).graph.node


@pytest.mark.slow
def test_int8_export_is_smaller_than_fp32(fp32_export, int8_export):
    def size(folder: Path) -> int:
        return sum(path.stat().st_size for path in folder.glob("model.onnx*"))

    assert size(int8_export) < 0.6 * size(fp32_export)


@pytest.mark.slow
def test_cli_quantize_option(tiny_model, tiny_tokenizer, tmp_path):
    tiny_model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "examples" / "export_onnx.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    output_dir = script.main(
        ["--model_dir", str(tmp_path / "model"), "--output_dir", str(tmp_path / "onnx"), "--quantize", "int8"]
    )
    assert not (output_dir / "model.onnx.data").exists()
    assert OnnxEntityTyper(output_dir).metadata["quantization"]["mode"] == "int8"
    with pytest.raises(SystemExit):  # argparse rejects a value outside the choices
        script.main(["--model_dir", str(tmp_path / "model"), "--output_dir", str(tmp_path / "x"), "--quantize", "4"])
