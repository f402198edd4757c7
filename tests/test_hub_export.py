"""Hub export (`modeling_entity_typing.export.hub`, `examples/push_to_hub.py`): the folder's contents, library-mode and
remote-code loading (the latter in a subprocess that cannot import the package), flattening rules and upload errors."""

import ast
import importlib.util
import inspect
import json
import sys
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import tiny
import torch
import yaml
from huggingface_hub import ModelCard
from isolated import run_without_package
from tiny import make_tiny_model, make_tiny_tokenizer
from transformers import AutoConfig, AutoModel, AutoTokenizer, pipeline
from transformers.dynamic_module_utils import get_imports, get_relative_imports

import modeling_entity_typing.export.hub as hub
from modeling_entity_typing import EntityTypingPipeline
from modeling_entity_typing.export.hub import export_for_hub
from modeling_entity_typing.export.remote_code import check_remote_code, flatten_remote_code, remove_remote_code_fields


REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("push_to_hub", REPO_ROOT / "examples" / "push_to_hub.py")
push_to_hub = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(push_to_hub)


MENTIONS = [
    {"text": "Mark Twain wrote in Paris.", "span": [0, 10]},
    {"text": "Paris is a big city.", "span": [0, 5]},
    {"text": "The sports team of Paris is nice, and big.", "span": [4, 15]},
]
RESULTS = {
    "dev_strict_accuracy": 0.61,
    "dev_macro_f1": 0.72,
    "dev_num_mentions": 8,
    "test_strict_accuracy": 0.25,
    "test_micro_f1": 0.5,
    "test_macro_f1": 0.375,
    "test_num_mentions": 12,
    "k_shot": 5,
    "model_type": "set per family",
    "history": [{"step": 10, "dev_macro_f1": 0.72}],
}
CROSSC_READY = hasattr(tiny, "make_tiny_crossc_model")
NO_CROSSC = pytest.mark.skipif(not CROSSC_READY, reason="tests/tiny.py: no make_tiny_crossc_model")
FAMILIES = ["fivefine", pytest.param("crossc", marks=NO_CROSSC)]
# Every exported variant: `name: (family, model overrides)`; FiveFine's two type spaces ship different code paths.
VARIANTS = {
    "fivefine": ("fivefine", {}),
    "fivefine-encoder": ("fivefine", {"type_space": "encoder"}),
    "crossc": ("crossc", {}),
}
# `candidate_labels` as a list (default phrases) and as a {label: phrase} dict, for models that take them.
CANDIDATE_LABELS = (["writer", "/location/city", "team"], {"writer": "author", "city": "big town", "team": "club"})


def make_family(family: str, **overrides):
    """A tiny random model of `family` in eval mode and its own tokenizer (Cross-C adds its marker to it)."""
    tokenizer = make_tiny_tokenizer()
    maker = {"fivefine": make_tiny_model, "crossc": getattr(tiny, "make_tiny_crossc_model", None)}[family]
    return maker(tokenizer, **overrides).eval(), tokenizer


def typing_outputs(pipe, mentions) -> dict:
    """Logits of the pipeline's model on its own preprocessed inputs, the pipeline's labels (threshold 0) with its own
    labels and with each of CANDIDATE_LABELS (or the error of a model that takes none)."""
    logits = []
    with torch.no_grad():
        for mention in mentions:
            inputs = pipe.preprocess(mention)
            inputs.pop("meta")
            logits.append(pipe.model(**inputs).logits[0].tolist())
    labels = [[item["label"] for item in result["labels"]] for result in pipe(mentions, threshold=0.0)]
    candidates = []
    for candidate_labels in CANDIDATE_LABELS:
        try:
            results = pipe(mentions, threshold=0.0, candidate_labels=candidate_labels)
        except Exception as error:  # compared as data: the same error in both modes
            candidates.append(f"{type(error).__name__}: {error}")
            continue
        candidates.append([[(item["label"], item["score"]) for item in result["labels"]] for result in results])
    return {"logits": logits, "labels": labels, "candidates": candidates}


def assert_same_outputs(actual: dict, expected: dict) -> None:
    assert actual["labels"] == expected["labels"]
    torch.testing.assert_close(torch.tensor(actual["logits"]), torch.tensor(expected["logits"]), rtol=1e-5, atol=1e-6)
    assert len(actual["candidates"]) == len(expected["candidates"]) == len(CANDIDATE_LABELS)
    for got, want in zip(actual["candidates"], expected["candidates"]):
        assert isinstance(got, str) == isinstance(want, str), f"got {got}, want {want}"
        if isinstance(want, str):  # the error of a model that takes no candidate labels
            assert got == want
            continue
        assert [[label for label, _ in row] for row in got] == [[label for label, _ in row] for row in want]
        torch.testing.assert_close(
            torch.tensor([[score for _, score in row] for row in got]),
            torch.tensor([[score for _, score in row] for row in want]),
            rtol=1e-5,
            atol=1e-6,
        )


def export_family(name: str, root: Path) -> SimpleNamespace:
    """Save a tiny model of variant `name` as a training run would, export it, and record the library-mode outputs."""
    family, overrides = VARIANTS[name]
    model, tokenizer = make_family(family, **overrides)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (model_dir / "all_results.json").write_text(json.dumps({**RESULTS, "model_type": family}))
    folder = export_for_hub(
        model_dir,
        root / "export",
        f"org/tiny-{family}",
        base_model="bert-base-cased",
        dataset_name="Tiny test set",
        dataset_id="org/tiny-typing",
        language="en",
    )
    reference = typing_outputs(pipeline("entity-typing", model=model, tokenizer=tokenizer), MENTIONS)
    return SimpleNamespace(
        name=name, family=family, model=model, model_dir=model_dir, folder=folder, reference=reference
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, SimpleNamespace]:
    names = [name for name, (family, _) in VARIANTS.items() if CROSSC_READY or family != "crossc"]
    return {name: export_family(name, tmp_path_factory.mktemp(f"hub-{name}")) for name in names}


@pytest.fixture(params=FAMILIES)
def exported(request, exports) -> SimpleNamespace:
    return exports[request.param]


@pytest.fixture(params=[pytest.param(name, marks=NO_CROSSC) if name == "crossc" else name for name in VARIANTS])
def exported_variant(request, exports) -> SimpleNamespace:
    return exports[request.param]


# ---------------------------------------------------------------------------------------------------------------------
# The folder


def test_export_folder_holds_weights_config_code_tokenizer_and_card(exported):
    folder = exported.folder
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == exported.family
    config_class, model_class = type(exported.model.config).__name__, type(exported.model).__name__
    # every class is named through one entry module, which imports each from the file that defines it
    assert config["auto_map"] == {
        "AutoConfig": f"remote_code_entry.{config_class}",
        "AutoModel": f"remote_code_entry.{model_class}",
    }
    assert config["custom_pipelines"] == {
        "entity-typing": {"impl": "remote_code_entry.EntityTypingPipeline", "pt": ["AutoModel"]}
    }
    entry = (folder / "remote_code_entry.py").read_text()
    model_module = type(exported.model).__module__.rpartition(".")[2]
    for module, name in [
        (f"configuration_{exported.family}", config_class),
        (model_module, model_class),
        ("pipeline_entity_typing", "EntityTypingPipeline"),
    ]:
        assert f"from .{module} import {name}\n" in entry and (folder / f"{module}.py").is_file()
    # weights are the saved file, byte for byte; the tokenizer and the card are there
    assert (folder / "model.safetensors").read_bytes() == (exported.model_dir / "model.safetensors").read_bytes()
    assert not list(folder.glob("*.bin"))
    assert (folder / "tokenizer_config.json").is_file() and (folder / "README.md").is_file()
    assert (
        AutoTokenizer.from_pretrained(folder).get_vocab()
        == AutoTokenizer.from_pretrained(exported.model_dir).get_vocab()
    )
    assert json.loads((folder / "all_results.json").read_text())["test_macro_f1"] == RESULTS["test_macro_f1"]


def test_remote_code_is_flat_and_imports_only_torch_transformers_stdlib(exported):
    code = sorted(path.name for path in exported.folder.glob("*.py"))
    for name in code:
        path = exported.folder / name
        ast.parse(path.read_text())
        assert "modeling_entity_typing" not in get_imports(path)
        assert set(get_imports(path)) <= sys.stdlib_module_names | {"torch", "transformers", "huggingface_hub"}
        # every sibling that transformers will fetch for this file is shipped
        assert {f"{module}.py" for module in get_relative_imports(path)} <= set(code), name
        assert "from .." not in path.read_text()
    # code reached only by training, data loading or the export itself stays out
    assert not {
        "training_loop.py",
        "features.py",
        "mention_data.py",
        "hub.py",
        "remote_code.py",
        "scoring.py",
        "__init__.py",
    } & set(code)


def test_fivefine_code_set_follows_its_imports(exports):
    folder = exports["fivefine"].folder
    expected = {
        "configuration_fivefine.py",
        "modeling_fivefine.py",
        "pipeline_entity_typing.py",
        "decision.py",
        "label_sets.py",
        "layers.py",
        "losses.py",
        "modeling_outputs.py",
        "modeling_utils.py",
        "prompt_template.py",
        "sentence_space.py",
        "mlm_space.py",
        "type_space.py",
        "type_cache.py",
        "phrase_types.py",
        "auxiliary_losses.py",
        "mention_encoding.py",
        "mention_inputs.py",
        "contract.py",
        "configuration_entity_typing.py",
        "remote_code_entry.py",
        "label_examples.py",
        "example_mixing.py",
        "prototypes.py",
        "output_paths.py",
        "calibration.py",
    }
    assert {path.name for path in folder.glob("*.py")} == expected
    modeling = (folder / "modeling_fivefine.py").read_text()
    assert "from .configuration_fivefine import FiveFineConfig\n" in modeling  # was `from .configuration import`
    pipeline_code = (folder / "pipeline_entity_typing.py").read_text()
    assert "from .mention_inputs import EntityTypingInputError, InvalidInput, " in pipeline_code  # was `from ..`
    assert "from .decision import check_rule_options, decide, own_thresholds, resolve_rule\n" in pipeline_code


def test_exported_card_records_the_runs_test_scores(exported):
    card = ModelCard.load(exported.folder / "README.md")
    data = card.data
    assert data.library_name == "modeling_entity_typing" and data.license == "apache-2.0"
    assert "entity-typing" in data.tags and exported.family in data.tags
    assert data.base_model == "bert-base-cased" and data.datasets == ["org/tiny-typing"] and data.language == "en"
    scores = {(result.metric_name, result.dataset_split): result.metric_value for result in data.eval_results}
    assert scores == {
        ("Strict accuracy", "test"): RESULTS["test_strict_accuracy"],
        ("Micro F1 (loose)", "test"): RESULTS["test_micro_f1"],
        ("Macro F1 (loose)", "test"): RESULTS["test_macro_f1"],
    }  # dev scores chose the checkpoint: shown in the table, not claimed as results
    assert {result.dataset_name for result in data.eval_results} == {"Tiny test set"}
    assert "| test | 12 | 25.00 | 50.00 | 37.50 |" in card.text and "| dev | 8 | 61.00 |  | 72.00 |" in card.text
    assert f'pipeline(model="org/tiny-{exported.family}", trust_remote_code=True)' in card.text
    assert "pipeline_class=EntityTypingPipeline" in card.text
    entries = huggingface_hub.parse_eval_result_entries(
        yaml.safe_load((exported.folder / ".eval_results" / "org-tiny-typing.yaml").read_text())
    )
    assert [(e.dataset_id, e.task_id, e.value) for e in entries] == [("org/tiny-typing", "default", 0.375)]


# ---------------------------------------------------------------------------------------------------------------------
# Loading modes


def test_library_mode_uses_package_classes_and_needs_no_remote_code(exported):
    folder = str(exported.folder)
    config = AutoConfig.from_pretrained(folder)  # no trust_remote_code: the registered class wins, no prompt
    model = AutoModel.from_pretrained(folder)
    assert type(config) is type(exported.model.config) and type(model) is type(exported.model)
    # with the package imported its classes win even when remote code is allowed (nothing is fetched or run)
    assert type(AutoConfig.from_pretrained(folder, trust_remote_code=True)) is type(config)
    assert type(AutoModel.from_pretrained(folder, trust_remote_code=True)) is type(model)
    # the package serves the task its `custom_pipelines` names: no remote code and no flag, with or without the class
    for kwargs in ({}, {"trust_remote_code": False}, {"pipeline_class": EntityTypingPipeline}):
        typer = pipeline("entity-typing", model=folder, **kwargs)
        assert type(typer) is EntityTypingPipeline and type(typer.model) is type(exported.model)
        assert_same_outputs(typing_outputs(typer, MENTIONS), exported.reference)
    # a loaded model (no config lookup by path) goes through the registered task and needs nothing more
    typer = pipeline("entity-typing", model=model, tokenizer=AutoTokenizer.from_pretrained(folder))
    assert type(typer) is EntityTypingPipeline
    assert_same_outputs(typing_outputs(typer, MENTIONS), exported.reference)


REMOTE_SCRIPT = """
import json, os

repo = os.path.realpath(sys.argv[3])
sys.path[:] = [p for p in sys.path if p not in ("", ".") and not os.path.realpath(p) in (repo, repo + "/tests")]
CANDIDATE_LABELS = json.loads(sys.argv[4])
try:
    import modeling_entity_typing
    raise SystemExit("modeling_entity_typing was importable")
except ModuleNotFoundError:
    pass

import torch
from transformers import AutoConfig, AutoModel, pipeline

{typing_outputs}
job, results = json.loads(open(sys.argv[1]).read()), {}
for name, folder in job["folders"].items():
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    typer = pipeline(model=folder, trust_remote_code=True)  # task from config.custom_pipelines
    outputs = typing_outputs(typer, job["mentions"])
    outputs.update(
        classes=[type(obj).__module__ for obj in (config, model, typer, typer.model)],
        task=typer.task,
        same_weights=all(map(torch.equal, model.state_dict().values(), typer.model.state_dict().values())),
    )
    results[name] = outputs
results["package_modules"] = [name for name in sys.modules if name.partition(".")[0] == "modeling_entity_typing"]
results["cwd"] = os.getcwd()
open(sys.argv[2], "w").write(json.dumps(results))
"""


@pytest.fixture(scope="module")
def remote_outputs(exports, tmp_path_factory) -> dict[str, dict]:
    """Run REMOTE_SCRIPT once (one interpreter start) over every family's export; its outputs per family."""
    root = tmp_path_factory.mktemp("remote")
    job, result, cwd = root / "job.json", root / "result.json", root / "elsewhere"
    cwd.mkdir()
    job.write_text(json.dumps({"folders": {f: str(e.folder) for f, e in exports.items()}, "mentions": MENTIONS}))
    script = REMOTE_SCRIPT.replace("{typing_outputs}", textwrap.dedent(inspect.getsource(typing_outputs)))
    run_without_package(script, [str(job), str(result), str(REPO_ROOT), json.dumps(CANDIDATE_LABELS)], cwd, root)
    outputs = json.loads(result.read_text())
    assert Path(outputs.pop("cwd")).resolve() == cwd.resolve()
    assert outputs.pop("package_modules") == []  # nothing of the package was imported, after loading everything
    return outputs


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_remote_code_mode_without_the_package_matches_library_mode(exported_variant, remote_outputs):
    outputs = remote_outputs[exported_variant.name]
    assert all(module.startswith("transformers_modules.") for module in outputs["classes"]), outputs["classes"]
    assert outputs["task"] == "entity-typing" and outputs["same_weights"]
    assert_same_outputs(outputs, exported_variant.reference)
    # config, model and pipeline come from one copy of the flat files: a second copy of `label_sets` made two
    # `LabelSet` classes, and the model refused the pipeline's candidate labels
    assert len({module.rpartition(".")[0] for module in outputs["classes"]}) == 1, outputs["classes"]
    supports = exported_variant.model.supports_candidate_labels
    assert all(isinstance(result, str) != supports for result in outputs["candidates"]), outputs["candidates"]


# ---------------------------------------------------------------------------------------------------------------------
# Script, upload failures and export errors


def test_script_dry_run_and_upload_failures_keep_the_folder(exports, tmp_path, monkeypatch, capsys):
    exported = exports["fivefine"]  # the script is family-agnostic
    out = tmp_path / "out"
    argv = ["--model_dir", str(exported.model_dir), "--repo_id", "org/tiny", "--dataset_name", "Tiny test set"]
    folder = push_to_hub.main([*argv, "--output_dir", str(out), "--dry_run"])
    assert folder == out and "Dry run: nothing uploaded." in capsys.readouterr().out
    expected = sorted(path.relative_to(out) for path in out.rglob("*"))

    monkeypatch.setattr(hub, "get_hub_token", lambda: None)
    with pytest.raises(SystemExit, match=r"No Hugging Face token.*hf auth login.*export folder .* is complete"):
        push_to_hub.main([*argv, "--output_dir", str(out), "--overwrite_output_dir"])
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == expected

    assert huggingface_hub.constants.HF_HUB_OFFLINE  # conftest: the fake token below never reaches a server
    with pytest.raises(SystemExit, match=r"Uploading to org/tiny failed \(OfflineModeIsEnabled.*is complete"):
        push_to_hub.main([*argv, "--output_dir", str(out), "--overwrite_output_dir", "--token", "hf_fake"])
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == expected
    assert type(AutoModel.from_pretrained(out)) is type(exported.model)


def test_export_input_errors_say_what_to_fix(exports, tmp_path):
    exported = exports["fivefine"]
    with pytest.raises(FileNotFoundError, match="no config.json"):
        export_for_hub(tmp_path, tmp_path / "out", "org/x")
    (tmp_path / "config.json").write_text((exported.model_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no safetensors weights.*save_pretrained"):
        export_for_hub(tmp_path, tmp_path / "out", "org/x")
    with pytest.raises(ValueError, match="test scores but no dataset was named.*--dataset_name"):
        export_for_hub(exported.model_dir, tmp_path / "out1", "org/x")
    with pytest.raises(FileExistsError, match="not empty.*--overwrite_output_dir"):
        export_for_hub(exported.model_dir, exported.folder, "org/x", dataset_name="d")
    with pytest.raises(ValueError, match="must be outside `model_dir`"):
        export_for_hub(exported.model_dir, exported.model_dir / "hub", "org/x", dataset_name="d")
    with pytest.raises(huggingface_hub.errors.HFValidationError, match="`repo_id` .*'org/bad name'"):
        export_for_hub(exported.model_dir, tmp_path / "out2", "org/bad name", dataset_name="d")
    for argument in ("base_model", "dataset_id"):
        with pytest.raises(huggingface_hub.errors.HFValidationError, match=f"`{argument}` .*--{argument}.*'bad id'"):
            export_for_hub(exported.model_dir, tmp_path / "out3", "org/x", dataset_name="d", **{argument: "bad id"})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json"]  # no export was started


def folder_state(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` (staging leftovers included), with a file's bytes."""
    return {str(path.relative_to(root)): path.read_bytes() if path.is_file() else None for path in root.rglob("*")}


def dry_run_argv(exported: SimpleNamespace, out: Path) -> list[str]:
    return ["--model_dir", str(exported.model_dir), "--repo_id", "org/tiny", "--output_dir", str(out), "--dry_run"]


def test_an_export_missing_its_dataset_name_writes_nothing_and_the_rerun_needs_no_overwrite(exports, tmp_path):
    exported = exports["fivefine"]
    root, out = tmp_path / "exports", tmp_path / "exports" / "hub"
    argv = dry_run_argv(exported, out)
    with pytest.raises(ValueError, match="test scores but no dataset was named.*--dataset_name"):
        push_to_hub.main(argv)  # all_results.json has test scores: the card needs the dataset's name
    assert not root.exists() or folder_state(root) == {}
    assert push_to_hub.main([*argv, "--dataset_name", "Tiny test set"]) == out  # no --overwrite_output_dir needed
    assert type(AutoModel.from_pretrained(out)) is type(exported.model)


def test_an_export_failing_midway_leaves_the_target_as_it_was(exports, tmp_path, monkeypatch):
    exported = exports["fivefine"]
    root, out = tmp_path / "exports", tmp_path / "exports" / "hub"
    argv = [*dry_run_argv(exported, out), "--dataset_name", "Tiny test set"]

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(hub, "_copy_weights", disk_full)  # midway: after the code and config are written
        with pytest.raises(OSError, match="No space left"):
            push_to_hub.main(argv)
    assert not root.exists() or folder_state(root) == {}
    assert push_to_hub.main(argv) == out  # no --overwrite_output_dir needed
    before = folder_state(root)
    # a replacement that fails midway keeps the old export whole (it used to be emptied first)
    with monkeypatch.context() as patch:
        patch.setattr(hub, "_copy_weights", disk_full)
        with pytest.raises(OSError, match="No space left"):
            push_to_hub.main([*argv, "--dataset_name", "Other set", "--overwrite_output_dir"])
    assert folder_state(root) == before
    push_to_hub.main([*argv, "--dataset_name", "Other set", "--overwrite_output_dir"])
    assert set(folder_state(root)) == set(before) and "Other set" in (out / "README.md").read_text()
    assert type(AutoModel.from_pretrained(out)) is type(exported.model)


def test_fine_tuned_copy_can_drop_the_remote_code_fields(exported, tmp_path):
    model = AutoModel.from_pretrained(exported.folder)
    assert model.config.auto_map  # inherited from the export
    # the package's own pipeline serves the task, so the remote-code pipeline entry is not even read in
    assert not getattr(model.config, "custom_pipelines", None)
    remove_remote_code_fields(model.config)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in saved and "custom_pipelines" not in saved


# ---------------------------------------------------------------------------------------------------------------------
# Flattening rules, on a throw-away package


def make_package(root: Path, files: dict[str, str]) -> str:
    """Write `files` (paths relative to a fresh package) under `root`; returns the package's name."""
    name = f"fakepkg_{uuid.uuid4().hex[:8]}"
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return name


def test_flattening_rewrites_relative_imports_and_the_result_imports(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = make_package(
        tmp_path,
        {
            "conf/__init__.py": "from .conf_x import RULES, XConfig as Config\n",
            "conf/conf_x.py": "RULES = ('a', 'b')\n\nclass XConfig:\n    pass\n",
            "helpers.py": "def double(x):\n    return 2 * x\n",
            "unused.py": "raise RuntimeError('never imported')\n",
            "model_x.py": """\
                import math

                from .conf import (
                    Config,
                    RULES as KNOWN,
                )


                def model():
                    from .helpers import double as twice  # lazy

                    return Config, KNOWN, twice(math.pi)
            """,
            "pipes/__init__.py": "",
            "pipes/pipe.py": "from ..helpers import double\nfrom ..conf import Config\n",
        },
    )
    files = {item.filename: item.text for item in flatten_remote_code([f"{name}.model_x", f"{name}.pipes.pipe"])}
    assert set(files) == {"model_x.py", "conf_x.py", "helpers.py", "pipe.py"}
    assert "from .conf_x import XConfig as Config, RULES as KNOWN\n" in files["model_x.py"]
    assert "    from .helpers import double as twice\n" in files["model_x.py"]
    assert "from .helpers import double\nfrom .conf_x import XConfig as Config\n" in files["pipe.py"]
    flat = tmp_path / f"flat_{name}"
    flat.mkdir()
    (flat / "__init__.py").write_text("")
    for filename, text in files.items():
        (flat / filename).write_text(text)
    check_remote_code(flat, files)
    module = __import__(f"flat_{name}.model_x", fromlist=["model"])
    config, known, value = module.model()
    assert config.__name__ == "XConfig" and known == ("a", "b") and value == pytest.approx(6.283185307)
    assert config is __import__(f"flat_{name}.pipe", fromlist=["Config"]).Config


@pytest.mark.parametrize(
    "source, message",
    [
        ("import {pkg}.helpers\n", "imports fakepkg_.* absolutely"),
        ("from {pkg}.helpers import double\n", "from fakepkg_.*helpers import .*remote code cannot import"),
        ("from . import helpers\n", "cannot be flattened; import names from the module"),
        ("from .helpers import *\n", "cannot be flattened"),
        ("import os; from .helpers import double\n", "shares its line with other code"),
        ("from .sub import thing\n", "not re-exported from one of its modules"),
    ],
)
def test_flattening_refuses_what_remote_code_cannot_load(tmp_path, monkeypatch, source, message):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = make_package(
        tmp_path, {"helpers.py": "def double(x):\n    return 2 * x\n", "sub/__init__.py": "thing = 1\n"}
    )
    (tmp_path / name / "bad.py").write_text(source.format(pkg=name))
    with pytest.raises(ValueError, match=message):
        flatten_remote_code([f"{name}.bad"])


def test_remote_code_check_allows_only_stdlib_torch_transformers(tmp_path):
    files = {
        "ok.py": "import json\nimport torch\nfrom transformers import PreTrainedModel\nfrom .other import x\n",
        "other.py": "try:\n    import datasets\nexcept ImportError:\n    datasets = None\nx = 1\n",
    }
    for filename, text in files.items():
        (tmp_path / filename).write_text(text)
    check_remote_code(tmp_path, files)  # the optional import in try/except is fine
    (tmp_path / "third.py").write_text("import datasets\n")
    with pytest.raises(ValueError, match=r"third.py imports \['datasets'\].*try/except ImportError"):
        check_remote_code(tmp_path, [*files, "third.py"])
    (tmp_path / "third.py").write_text("from modeling_entity_typing import decide\n")
    with pytest.raises(ValueError, match="modeling_entity_typing itself cannot be imported by remote code"):
        check_remote_code(tmp_path, [*files, "third.py"])
    (tmp_path / "third.py").write_text('"""Usage:\n\nfrom .missing import y\n"""\n')
    with pytest.raises(ValueError, match=r"relatively imports \['missing.py'\].*docstring"):
        check_remote_code(tmp_path, [*files, "third.py"])
