"""No writer of the package or its scripts silently replaces a file or folder the user named: each refuses, before
writing anything, with the path and the keyword or flag that allows it (`modeling_entity_typing.output_paths`)."""

import importlib.util
import json
from pathlib import Path

import pytest
from tiny import FET_ROWS, make_tiny_model, make_tiny_tokenizer, write_mentions
from transformers import AutoConfig, AutoModel, AutoTokenizer

from modeling_entity_typing.export.hub import export_for_hub
from modeling_entity_typing.export.model_card import write_eval_results
from modeling_entity_typing.export.onnx_export import export_onnx
from modeling_entity_typing.output_paths import prepare_output_dir


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SAMPLE = EXAMPLES / "data" / "crossc_sample"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A fine-tuned run's folder: a tiny FiveFine model, its tokenizer and results."""
    tokenizer = make_tiny_tokenizer()
    folder = tmp_path / "run"
    make_tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "all_results.json").write_text(json.dumps({"test_macro_f1": 0.5}))
    return folder


@pytest.fixture
def other_model():
    """Another model, with another label set and decision rule, to export."""
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer, labels=["writer", "city"], decision="argmax_with_ancestors")
    return model.eval(), tokenizer


def test_onnx_export_into_another_runs_folder_is_refused_before_anything_is_written(run_dir, other_model):
    before = snapshot(run_dir)
    with pytest.raises(
        FileExistsError, match=rf"{run_dir} exists and is not empty.*overwrite=True.*--overwrite_output_dir"
    ):
        export_onnx(*other_model, run_dir)
    assert snapshot(run_dir) == before
    assert AutoModel.from_pretrained(run_dir).config.decision == "threshold"


def test_onnx_export_script_refuses_a_non_empty_output_dir(run_dir, tmp_path):
    target = tmp_path / "earlier-export"
    target.mkdir()
    (target / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        load_script("export_onnx").main(["--model_dir", str(run_dir), "--output_dir", str(target)])
    assert snapshot(target) == {"config.json": b"{}"}


@pytest.mark.parametrize("where", ["itself", "its parent"])
def test_onnx_export_never_empties_the_folder_the_model_was_read_from(run_dir, where):
    """`overwrite` empties the output folder first: that must not delete the model being exported."""
    before = snapshot(run_dir)
    model = AutoModel.from_pretrained(run_dir).eval()
    output_dir = run_dir if where == "itself" else run_dir.parent
    with pytest.raises(ValueError, match=rf"{output_dir} is or holds {run_dir}.*outside it"):
        export_onnx(model, AutoTokenizer.from_pretrained(run_dir), output_dir, overwrite=True)
    argv = ["--model_dir", str(run_dir), "--output_dir", str(output_dir), "--overwrite_output_dir"]
    with pytest.raises(ValueError, match="is or holds"):
        load_script("export_onnx").main(argv)
    assert snapshot(run_dir) == before


@pytest.mark.slow  # exports with torch.onnx
def test_onnx_export_with_overwrite_replaces_the_whole_folder(run_dir, other_model, tmp_path):
    from modeling_entity_typing.export.onnx_export import OnnxEntityTyper

    target = tmp_path / "export"
    target.mkdir()
    for name in ("config.json", "model.onnx.data", "notes.txt"):  # another export's files
        (target / name).write_text("old")
    export_onnx(*other_model, target, overwrite=True)
    assert not (target / "notes.txt").exists()
    typer = OnnxEntityTyper(target)
    assert (
        typer.labels == ["writer", "city"] and AutoConfig.from_pretrained(target).decision == "argmax_with_ancestors"
    )


def test_hub_export_with_overwrite_never_deletes_the_model_folder(run_dir):
    before = snapshot(run_dir)
    with pytest.raises(ValueError, match="is or holds"):
        export_for_hub(run_dir, run_dir.parent, "org/x", dataset_name="d", overwrite=True)
    assert snapshot(run_dir) == before


def test_eval_results_file_is_replaced_only_with_overwrite(tmp_path):
    path = write_eval_results(tmp_path, {"test_macro_f1": 0.5}, "org/data")
    first = path.read_text()
    with pytest.raises(FileExistsError, match=rf"{path} exists.*overwrite=True"):
        write_eval_results(tmp_path, {"test_macro_f1": 0.7}, "org/data")
    assert path.read_text() == first
    assert write_eval_results(tmp_path, {"test_macro_f1": 0.7}, "org/data", overwrite=True) == path
    assert "0.7" in path.read_text()


@pytest.mark.parametrize("existing", [".png", ".json"])
def test_plot_script_refuses_an_existing_figure_or_its_numbers(tmp_path, existing):
    output = tmp_path / "shots.png"
    output.with_suffix(existing).write_text("mine")
    argv = ["shots", "--system", f"A={tmp_path}/none/*.json", "--output", str(output)]
    plot_results = load_script("plot_results")
    with pytest.raises(FileExistsError, match=rf"{output.with_suffix(existing)} exists.*--overwrite_output"):
        plot_results.main(argv)
    assert output.with_suffix(existing).read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="matches no file"):  # allowed: on to reading the runs
        plot_results.main([*argv, "--overwrite_output"])


def test_translate_script_refuses_an_existing_report(tmp_path):
    source = write_mentions(tmp_path / "test.jsonl", FET_ROWS[:2])
    output = tmp_path / "test.pt.jsonl"
    report = tmp_path / "test.pt.report.json"
    report.write_text("mine")
    argv = ["--input", source, "--output", str(output), "--direction", "en-pt"]
    translate_mentions = load_script("translate_mentions")
    with pytest.raises(FileExistsError, match=rf"{report} exists.*--overwrite_output"):
        translate_mentions.parse_args(argv)
    assert translate_mentions.parse_args([*argv, "--overwrite_output"]).overwrite_output


@pytest.mark.parametrize("existing", ["output", "report"])
def test_contrastive_data_script_refuses_an_existing_output_or_report(tmp_path, existing):
    output = tmp_path / "rows.jsonl"
    path = output if existing == "output" else tmp_path / "rows.report.json"
    path.write_text("mine")
    argv = ["--corpus", str(SAMPLE / "corpus.jsonl"), "--kb", str(SAMPLE / "kb.tsv"), "--output", str(output)]
    script = load_script("build_contrastive_data")
    with pytest.raises(FileExistsError, match=rf"{path} exists.*--overwrite_output"):
        script.main(argv)
    assert path.read_text() == "mine"
    assert script.main([*argv, "--overwrite_output"])["rows_written"] > 0
    assert path.read_text() != "mine"


def test_an_output_folder_may_exist_empty_but_not_be_a_file(tmp_path):
    assert prepare_output_dir(tmp_path, overwrite=False) == tmp_path
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        prepare_output_dir(tmp_path / "file", overwrite=True)


@pytest.mark.parametrize("family", ["fivefine", "crossc"])
def test_from_encoder_refuses_a_save_directory_holding_anything(family, tmp_path, tiny_tokenizer):
    """`from_encoder(..., save_directory=)` replaced another model's files without a word; now it refuses before it
    loads any weight, and `overwrite=True` replaces the folder whole."""
    from tiny import get_tiny_fivefine_config
    from transformers import BertConfig, BertModel

    from modeling_entity_typing import BertForPhraseTypeTyping, MBertForContrastiveTyping

    encoder = tmp_path / "encoder"
    fields = get_tiny_fivefine_config().to_dict()
    BertModel(BertConfig(**{k: v for k, v in fields.items() if k in BertConfig().to_dict()})).save_pretrained(encoder)
    tiny_tokenizer.save_pretrained(encoder)
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text('{"another": "model"}')
    cls = {"fivefine": BertForPhraseTypeTyping, "crossc": MBertForContrastiveTyping}[family]
    with pytest.raises(FileExistsError, match=r"other-model exists and is not empty.*`overwrite=True` to `from_enc"):
        cls.from_encoder(encoder, ["person", "city"], save_directory=other, max_seq_length=32)
    assert (other / "config.json").read_text() == '{"another": "model"}'  # untouched
    cls.from_encoder(encoder, ["person", "city"], save_directory=other, overwrite=True, max_seq_length=32)
    assert json.loads((other / "config.json").read_text())["model_type"] == family
    assert (other / "model.safetensors").is_file()
