"""`make model` (`examples/build_general_model.py`) end to end on a tiny encoder: train with the general recipe, fit
the threshold and calibration on dev, export with a card generated from the run, and type through `pipeline` with
the package and without it (remote code): its own labels, candidate labels and label examples at call time."""

import importlib.util
import inspect
import json
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from isolated import run_without_package
from tiny import FET_ROWS, make_tiny_model, write_mentions
from transformers import AutoModel, pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)


REPO_ROOT = Path(__file__).resolve().parents[1]
TYPES = ("entity", "person", "author", "location", "city", "organization", "company", "sports_team", "time", "writer")
TEXT, SPAN = "mark twain wrote in paris .", (0, 10)
CANDIDATES = {"person": "person", "city": "city", "company": "company"}
EXAMPLES = {
    "person": [{"text": "mark twain wrote in paris .", "start": 0, "end": 10}],
    "city": [{"text": "paris is a big city .", "start": 0, "end": 5}],
}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_general_model = load_script("build_general_model")


def tiny_ufet(root: Path, tokenizer) -> tuple[Path, Path]:
    """A tiny encoder-space starting point and a UFET-shaped data folder (train/dev/test/types)."""
    encoder = root / "encoder"
    make_tiny_model(tokenizer, type_space="encoder").save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    rows = [(text, mention, [label.split("/")[-1] for label in labels]) for text, mention, labels in FET_ROWS]
    ufet = root / "data" / "ufet"
    ufet.mkdir(parents=True)
    for split, part in (("train", rows), ("dev", rows[::2]), ("test", rows[1::2])):
        write_mentions(ufet / f"{split}.json", part)
    (ufet / "types.txt").write_text("\n".join(TYPES) + "\n")
    return encoder, root / "data"


ZERO_SHOT = {
    "command": "python benchmarks/bench_zero_shot_schemas.py --model tiny",
    "rows": [
        {"schema": "figer", "name": "FIGER", "mentions": 3, "labels": 2, "headline": "micro_f1",
         "systems": {"general": {"micro_f1": 0.5}, "plain_encoder": {"micro_f1": 0.25}, "prototype": None}},
        {"schema": "ufet", "name": "UFET (crowd test)", "mentions": 3, "labels": 10, "headline": "macro_f1",
         "ufet_derived": True, "systems": {"general": {"macro_f1": 0.4}, "plain_encoder": {"macro_f1": 0.1},
                                           "prototype": {"macro_f1": 0.2}}},
    ],
}  # fmt: skip


def build_args(encoder: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(encoder), "--data_dir", str(data), "--output_dir", str(output),
        "--max_steps", "4", "--eval_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
        "--base_model", "", "--threshold_groups", "2", "3", *extra,
    ]  # fmt: skip


def test_an_existing_output_folder_is_refused_before_training(tiny_tokenizer, tmp_path):
    encoder, data = tiny_ufet(tmp_path, tiny_tokenizer)
    output = tmp_path / "model"
    output.mkdir()
    (output / "README.md").write_text("someone's model card")
    with pytest.raises(FileExistsError, match="not empty.*--overwrite_output_dir"):
        build_general_model.main(build_args(encoder, data, output))
    assert not (tmp_path / "model-work").exists()  # nothing ran


def test_missing_ufet_data_says_what_the_folder_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"lacks train.json, dev.json, test.json, types.txt.*--data_dir"):
        build_general_model.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])


@pytest.mark.slow  # training in a subprocess and a fresh interpreter without the package: seconds
def test_make_model_recipe_end_to_end(tiny_tokenizer, tmp_path, caplog):
    encoder, data = tiny_ufet(tmp_path, tiny_tokenizer)
    output, work = tmp_path / "model", tmp_path / "model-work"
    work.mkdir()
    (work / "zero_shot_schemas.json").write_text(json.dumps(ZERO_SHOT))  # measured earlier: reused, not rerun
    folder = build_general_model.main(build_args(encoder, data, output))
    assert folder == output

    results = json.loads((work / "train" / "all_results.json").read_text())
    model = AutoModel.from_pretrained(output)
    assert model.config.calibration_slope == results["calibration"]["slope"] > 0
    assert model.config.threshold == results["dev_threshold"] and model.config.num_labels == len(TYPES)

    card = ModelCard.load(output / "README.md")
    index = {(result.dataset_name, result.metric_name): result.metric_value for result in card.data.eval_results}
    assert index[("UFET crowd (Choi et al., 2018)", "Macro F1 (loose)")] == results["test_macro_f1"]
    assert index[("FIGER", "Micro F1 (loose), zero-shot")] == 0.5
    assert not any(name == "UFET (crowd test)" for name, _ in index)  # trained on UFET: not a zero-shot claim
    assert "| FIGER | 3 | 2 | Micro F1 (loose) | 50.00 | 25.00 | n/a |" in card.text
    assert "| UFET (crowd test) † |" in card.text and "## Calibration" in card.text
    assert "python examples/build_general_model.py --model_name_or_path" in card.text
    assert json.loads((output / "zero_shot_schemas.json").read_text())["rows"] == ZERO_SHOT["rows"]

    library = typing_outputs(pipeline("entity-typing", model=str(output)))
    assert {item["label"] for item in library["own"]} <= set(TYPES)
    assert {item["label"] for item in library["candidates"]} == set(CANDIDATES)
    assert library["examples"] != library["candidates"]  # the examples moved the person and city vectors
    remote = remote_typing_outputs(output, tmp_path)
    for key, items in library.items():
        assert [item["label"] for item in remote[key]] == [item["label"] for item in items], key
        assert [item["score"] for item in remote[key]] == pytest.approx([item["score"] for item in items], abs=1e-5)

    # a rerun reuses the finished training and table, and replaces the export only when asked
    caplog.clear()
    with caplog.at_level("INFO", logger="build_general_model"):
        build_general_model.main(build_args(encoder, data, output, "--overwrite_output_dir"))
    assert "Training: reusing the finished run" in caplog.text and "Zero-shot table: reusing" in caplog.text


def typing_outputs(typer) -> dict[str, list[dict]]:
    """The three ways a user types with the general model: its own labels, candidate labels, and label examples."""
    return {
        "own": typer(TEXT, span=SPAN, top_k=3)["labels"],
        "candidates": typer(TEXT, span=SPAN, candidate_labels=CANDIDATES, threshold=0.0)["labels"],
        "examples": typer(TEXT, span=SPAN, candidate_labels=CANDIDATES, label_examples=EXAMPLES, threshold=0.0)[
            "labels"
        ],
    }


REMOTE = """
import json

from transformers import pipeline

TEXT, SPAN, CANDIDATES, EXAMPLES = json.loads(sys.argv[2])
SPAN = tuple(SPAN)
typer = pipeline(model=sys.argv[1], trust_remote_code=True)
{typing_outputs}
outputs = typing_outputs(typer)
assert not [name for name in sys.modules if name.partition(".")[0] == "modeling_entity_typing"]
print(json.dumps(outputs))
"""


def remote_typing_outputs(folder: Path, tmp_path: Path) -> dict[str, list[dict]]:
    """`typing_outputs` in a fresh interpreter where the package cannot be imported (transformers remote code)."""
    script = REMOTE.replace("{typing_outputs}", textwrap.dedent(inspect.getsource(typing_outputs)))
    arguments = [str(folder), json.dumps([TEXT, SPAN, CANDIDATES, EXAMPLES])]
    process = run_without_package(script, arguments, tmp_path, tmp_path)
    return json.loads(process.stdout.strip().splitlines()[-1])
