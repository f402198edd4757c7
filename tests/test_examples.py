"""The training scripts end to end, in-process, on a tiny model: outputs, resume, two processes, bad arguments."""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from tiny import FET_ROWS, make_tiny_model, write_mentions
from transformers import AutoModel

from modeling_entity_typing.evaluation.scoring import GROUP_THRESHOLD_GRID
from modeling_entity_typing.training import check_world_size, launch_command_num_processes


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


finetune_fet = load_script("finetune_fet")
pretrain_ufet = load_script("pretrain_ufet")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps process-wide singletons; each script run must start from a clean state."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer):
    """A tiny FiveFine model without dropout (so runs can be compared exactly), saved with its tokenizer."""
    path = tmp_path_factory.mktemp("tiny-fivefine")
    model = make_tiny_model(
        tiny_tokenizer, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, type_attention_dropout=0.0
    )
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def fet_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fet")
    return {
        split: write_mentions(folder / f"{split}.jsonl", rows)
        for split, rows in (("train", FET_ROWS), ("dev", FET_ROWS[::2]), ("test", FET_ROWS[1::2]))
    }


def fet_args(checkpoint, files, output_dir, *extra):
    return [
        "--model_name_or_path", checkpoint, "--train_file", files["train"], "--validation_file", files["dev"],
        "--test_file", files["test"], "--output_dir", str(output_dir), "--k_shot", "0",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--learning_rate", "1e-3",
        "--max_steps", "8", "--eval_steps", "2", "--min_steps", "0", "--patience", "100", *extra,
    ]  # fmt: skip


def launch_two_cpu_processes(script: str, arguments: list[str], port: int) -> subprocess.CompletedProcess:
    """The documented multi-CPU recipe: `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2`."""
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
               str(EXAMPLES / f"{script}.py"), *arguments]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def test_finetune_end_to_end(tiny_checkpoint, fet_files, tmp_path):
    summary = finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path, "--single_path_train"))
    saved = json.loads((tmp_path / "all_results.json").read_text())
    assert saved["best_step"] == summary["best_step"] and summary["steps"] == 8
    assert [entry["step"] for entry in saved["history"]] == [0, 2, 4, 6, 8]  # step 0: the starting model
    assert saved["num_types"] == 4 and saved["train_examples"] == 16 and saved["test_num_mentions"] == 8
    assert 0.0 <= saved["test_macro_f1"] <= 1.0
    best = max(saved["history"], key=lambda entry: (entry["macro_f1"], entry["strict_accuracy"]))
    assert best["step"] == saved["best_step"]
    # The scores logged during training are those of a fresh evaluation of the same (best) weights.
    for key in ("macro_f1", "macro_precision", "macro_recall", "micro_f1", "strict_accuracy"):
        assert saved[f"dev_{key}"] == pytest.approx(best[key]), key
    model = AutoModel.from_pretrained(tmp_path)
    assert sorted(model.config.label2id) == ["/location/city", "/organization/company", "/organization/sports_team",
                                             "/person/author"]  # fmt: skip
    assert model.config.decision == "argmax_with_ancestors"
    assert (tmp_path / "tokenizer_config.json").is_file() and (tmp_path / "model.safetensors").is_file()


def test_eval_at_start_lets_the_starting_model_compete(tiny_checkpoint, fet_files, tmp_path):
    summary = finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path, "--eval_at_start", "true"))
    assert [entry["step"] for entry in summary["history"]] == [0, 2, 4, 6, 8]
    assert summary["history"][0]["train_loss"] is None and summary["history"][1]["train_loss"] > 0
    best = max(summary["history"], key=lambda entry: (entry["macro_f1"], entry["strict_accuracy"]))
    assert summary["best_step"] == best["step"]  # the first best wins ties, step 0 included


def test_finetune_k_shot_and_label_files(tiny_checkpoint, fet_files, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("/person\n/person/author\n/location\n/location/city\n/organization\n/organization/company\n")
    phrases = tmp_path / "phrases.tsv"
    phrases.write_text("/person/author\twriter author\n")
    summary = finetune_fet.main(
        fet_args(
            tiny_checkpoint,
            fet_files,
            tmp_path / "out",
            "--k_shot",
            "2",
            "--labels_file",
            str(labels),
            "--label_phrases_file",
            str(phrases),
            "--max_steps",
            "2",
        )  # fmt: skip
    )
    # 2 per type over the 3 types of the label set; sports-team mentions lose their fine label, keep /organization.
    assert summary["train_examples"] == 8 and summary["num_types"] == 6
    config = AutoModel.from_pretrained(tmp_path / "out").config
    assert config.label_phrases[config.label2id["/person/author"]] == "writer author"


def test_resumed_run_equals_uninterrupted(tiny_checkpoint, fet_files, tmp_path):
    straight = finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path / "straight"))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    interrupted = tmp_path / "interrupted"
    finetune_fet.main(
        fet_args(tiny_checkpoint, fet_files, interrupted, "--max_steps", "6", "--checkpointing_steps", "3")
    )
    assert sorted(path.name for path in (interrupted / "checkpoints").iterdir()) == ["checkpoint_3", "checkpoint_6"]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    # Resume from the step-3 checkpoint (mid-epoch: 4 batches per epoch) and run to the end; the step-6 checkpoint
    # of the first run is then a later step than the resumed one, which only --overwrite_output_dir may discard.
    resumed = finetune_fet.main(
        fet_args(
            tiny_checkpoint,
            fet_files,
            interrupted,
            "--resume_from_checkpoint",
            str(interrupted / "checkpoints" / "checkpoint_3"),
            "--overwrite_output_dir",
        )  # fmt: skip
    )
    assert resumed["history"] == straight["history"]
    assert resumed["best_step"] == straight["best_step"]
    straight_weights = load_file(tmp_path / "straight" / "model.safetensors")
    resumed_weights = load_file(interrupted / "model.safetensors")
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=0, msg=name)  # bit-identical


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_two_processes_equal_one_with_the_same_global_batch(tiny_checkpoint, fet_files, tmp_path):
    """The documented multi-CPU recipe (2 x batch 2, gloo DDP) against one process with batch 4."""
    one = finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path / "one"))
    result = launch_two_cpu_processes(
        "finetune_fet", fet_args(tiny_checkpoint, fet_files, tmp_path / "two", "--per_device_train_batch_size", "2"),
        port=29517,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "all_results.json").read_text())
    assert two["num_processes"] == 2 and one["num_processes"] == 1
    assert two["global_batch_size"] == one["global_batch_size"] == 4
    assert two["test_num_mentions"] == 8  # every test mention once, none duplicated by uneven sharding
    for ours, theirs in zip(one["history"], two["history"], strict=True):
        for key in ("macro_f1", "micro_f1", "strict_accuracy"):
            assert theirs[key] == pytest.approx(ours[key], abs=1e-6)
        if ours["step"] == 0:  # the starting model, before any training
            assert ours["train_loss"] is None and theirs["train_loss"] is None
        else:
            assert theirs["train_loss"] == pytest.approx(ours["train_loss"], rel=1e-4)
    assert two["test_macro_f1"] == pytest.approx(one["test_macro_f1"], abs=1e-6)
    one_weights = load_file(tmp_path / "one" / "model.safetensors")
    two_weights = load_file(tmp_path / "two" / "model.safetensors")
    # An attention key bias (the type pool's and every encoder layer's) shifts every score of a row equally, so
    # softmax makes its gradient zero up to rounding; Adam turns that rounding noise into full-size steps, so these
    # alone differ between any two summation orders.
    for name, tensor in one_weights.items():
        if not name.endswith("key.bias"):
            torch.testing.assert_close(two_weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_pretrain_ufet_with_mlm_and_nwp(tiny_checkpoint, tmp_path):
    rows = [
        (text, mention, [label.split("/")[-1] for label in labels] + ["entity"]) for text, mention, labels in FET_ROWS
    ]
    rows[0] = (rows[0][0], rows[0][1], ["unknown type"])  # outside the vocabulary: counted, then skipped
    train = write_mentions(tmp_path / "train.jsonl", rows)
    dev = write_mentions(tmp_path / "dev.jsonl", rows[1::2])
    types = tmp_path / "types.txt"
    types.write_text("entity\nperson\nauthor\nlocation\ncity\norganization\ncompany\nsports_team\n")
    args = [
        "--model_name_or_path", tiny_checkpoint, "--train_file", train, "--validation_file", dev,
        "--test_file", dev, "--types_file", str(types), "--output_dir", str(tmp_path / "out"),
        "--per_device_train_batch_size", "4", "--max_steps", "4", "--eval_steps", "2", "--nwp_interval", "2",
        "--threshold_groups", "2", "3", "--learning_rate", "1e-3",
    ]  # fmt: skip
    summary = pretrain_ufet.main(args)
    assert summary["train_examples"] == 15 and summary["skipped_train_records"] == 1
    assert summary["num_types"] == 8 and len(summary["history"]) == 2
    assert all(entry["train_loss"] > 0 for entry in summary["history"])
    model = AutoModel.from_pretrained(tmp_path / "out")
    assert model.config.num_labels == 8 and model.nwp_head is not None
    # calibrated on dev and stored, with the thresholds mapped through it: calibration changes no decision, and the
    # group thresholds start from the selected step's one and only move to a better dev score
    calibration = summary["calibration"]
    assert (model.config.calibration_slope, model.config.calibration_offset) == (
        calibration["slope"],
        calibration["offset"],
    )
    assert set(calibration["splits"]) == {"dev", "test"}
    assert {"ece", "reliability", "pairs"} <= set(calibration["splits"]["dev"]["after"])
    best = next(entry for entry in summary["history"] if entry["step"] == summary["best_step"])
    assert summary["dev_macro_f1"] >= best["macro_f1"] - 1e-9
    # a threshold for each of the groups (types 1-2, 3-5, the rest) chosen on dev, mapped through the calibration
    groups = summary["dev_group_thresholds"]
    assert len(groups) == 3 and model.config.threshold == groups[2]
    slope, offset = calibration["slope"], calibration["offset"]
    chosen = [1 / (1 + math.exp(-(math.log(p / (1 - p)) - offset) / slope)) for p in groups]  # before calibration
    assert all(min(abs(t - g) for g in GROUP_THRESHOLD_GRID) < 1e-6 for t in chosen), chosen
    labels = model.config.label_list()
    assert model.config.label_thresholds == {label: groups[0] if index < 2 else groups[1]
                                             for index, label in enumerate(labels[:5])}  # fmt: skip
    bad = [*args[:-2], "--output_dir", str(tmp_path / "bad")]
    bad[bad.index("--threshold_groups") + 1] = "5"
    bad_groups = r"--threshold_groups, --types_file .*Threshold groups 5 3 .* leave labels for the last group \(8"
    with pytest.raises(ValueError, match=bad_groups):
        pretrain_ufet.main(bad)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    streamed = pretrain_ufet.main([*args[:-2], "--streaming", "--output_dir", str(tmp_path / "streamed"),
                                   "--learning_rate", "1e-3"])  # fmt: skip
    assert streamed["skipped_train_records"] == 1 and streamed["steps"] == 4


def test_mlm_and_nwp_terms_reach_the_loss(tiny_checkpoint, tmp_path, monkeypatch):
    """The pretraining objective carries MLM on every step and NWP on every `nwp_interval`-th step only."""
    seen = []
    original = pretrain_ufet.train_with_selection

    def spy(accelerator, model, optimizer, dataloader, evaluate, args, lr_scheduler=None, prepare_batch=None, **kw):
        for step, batch in zip(range(3), dataloader):
            prepared = prepare_batch(dict(batch), step)
            output = model(**{k: v for k, v in prepared.items() if k != "index"})
            seen.append((step, output.mlm_loss is not None, output.nwp_loss is not None))
        return original(accelerator, model, optimizer, dataloader, evaluate, args, lr_scheduler, prepare_batch, **kw)

    monkeypatch.setattr(pretrain_ufet, "train_with_selection", spy)
    rows = [(text, mention, ["entity"]) for text, mention, _ in FET_ROWS]
    train = write_mentions(tmp_path / "train.jsonl", rows)
    types = tmp_path / "types.txt"
    types.write_text("entity\nperson\n")
    pretrain_ufet.main([
        "--model_name_or_path", tiny_checkpoint, "--train_file", train, "--validation_file", train,
        "--types_file", str(types), "--output_dir", str(tmp_path / "out"), "--per_device_train_batch_size", "4",
        "--max_steps", "1", "--nwp_interval", "2",
    ])  # fmt: skip
    assert seen == [(0, True, True), (1, True, False), (2, True, True)]


@pytest.mark.parametrize(
    "extra, error, message",
    [
        (["--k_shot", "-1"], ValueError, "--k_shot must be >= 0"),
        (["--max_steps", "0"], ValueError, "--max_steps must be at least 1"),
        (["--labels_file", "/nonexistent/labels.txt"], FileNotFoundError, "--labels_file: no file"),
    ],
)
def test_bad_arguments_fail_with_a_fix(tiny_checkpoint, fet_files, tmp_path, extra, error, message):
    with pytest.raises(error, match=message):
        finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path, *extra))


@pytest.mark.parametrize(
    "option, value, choices",
    [
        ("--lr_scheduler_type", "fancy", "'linear', 'cosine'"),
        ("--phrase_table", "figer", "'bbn', 'few_nerd', 'ontonotes'"),
        ("--decision", "vote", "'threshold', 'argmax_with_ancestors'"),
    ],
)
def test_a_choice_outside_its_list_is_refused_by_the_parser(
    tiny_checkpoint, fet_files, tmp_path, capsys, option, value, choices
):
    """A string choice is a `Literal` field: the argument parser refuses any other value, naming the choices."""
    with pytest.raises(SystemExit) as exited:
        finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path / "out", option, value))
    assert exited.value.code == 2
    assert f"invalid choice: '{value}' (choose from {choices}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_world_size_mismatch_fails_loudly(monkeypatch):
    accelerator = Accelerator(cpu=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="started 2 processes .* accelerate runs 1"):
        check_world_size(accelerator)


def test_launch_command_parsing():
    python = sys.executable
    assert launch_command_num_processes([python, "/x/bin/accelerate", "launch", "--cpu", "--num_processes", "2"]) == 2
    assert launch_command_num_processes(["/x/bin/accelerate", "launch", "--num_processes=3", "s.py"]) == 3
    assert launch_command_num_processes(["/x/bin/accelerate", "launch", "s.py"]) is None
    assert launch_command_num_processes([python, "train.py", "--num_processes", "2"]) is None


@pytest.mark.slow
def test_accelerate_launch_cpu_with_two_processes_is_refused(tiny_checkpoint, fet_files, tmp_path):
    """`accelerate launch --cpu --num_processes 2` starts one process; the script must say so, not train alone."""
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--cpu", "--num_processes", "2", str(EXAMPLES / "finetune_fet.py"),
               *fet_args(tiny_checkpoint, fet_files, tmp_path, "--max_steps", "1")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0
    assert "was asked for 2 processes but started 1" in result.stderr


@pytest.mark.slow
def test_pretrain_on_two_processes(tiny_checkpoint, tmp_path):
    """MLM on every step, NWP on every other one: DDP must accept the NWP head idling on some steps."""
    rows = [(text, mention, ["entity"]) for text, mention, _ in FET_ROWS]
    train = write_mentions(tmp_path / "train.jsonl", rows)
    types = tmp_path / "types.txt"
    types.write_text("entity\nperson\n")
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29518",
               str(EXAMPLES / "pretrain_ufet.py"), "--model_name_or_path", tiny_checkpoint, "--train_file", train,
               "--validation_file", train, "--types_file", str(types), "--output_dir", str(tmp_path / "out"),
               "--per_device_train_batch_size", "2", "--max_steps", "4", "--eval_steps", "2", "--nwp_interval", "2",
               ]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["num_processes"] == 2


def test_recipe_defaults_are_what_help_says(capsys):
    # The recipe chosen on OntoNotes dev data (BENCHMARKS.md, "Recipe experiments") is the script's default.
    recipe = {"learning_rate": 5e-5, "head_learning_rate": 1e-2, "per_device_train_batch_size": 16,
              "max_steps": 150, "eval_steps": 10, "min_steps": 80, "patience": 40, "eval_at_start": True}  # fmt: skip
    args, train_args = finetune_fet.parse_args(["--output_dir", "unused"])
    assert {name: getattr(train_args, name) for name in recipe} == recipe
    assert args.single_path_train is True and args.type_space == "encoder" and args.fit_mlm_head == "auto"
    with pytest.raises(SystemExit):
        finetune_fet.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name, value in {**recipe, "single_path_train": True, "type_space": "encoder", "fit_mlm_head": "auto"}.items():
        assert re.search(rf"--{name} .*?\(default: {re.escape(str(value))}\)", help_text), name


def test_pretrain_ufet_in_encoder_space_with_sampled_negatives(tiny_tokenizer, tmp_path, monkeypatch):
    """Encoder type space trains against the batch's targets plus sampled negatives and evaluates on all types."""
    checkpoint = tmp_path / "encoder-space"
    make_tiny_model(tiny_tokenizer, type_space="encoder").save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    seen_types = []
    original = pretrain_ufet.sample_type_columns

    def spy(batch, model, num_negatives):
        sampled = original(batch, model, num_negatives)
        seen_types.append(len(sampled["type_phrase_ids"]))
        return sampled

    monkeypatch.setattr(pretrain_ufet, "sample_type_columns", spy)
    rows = [(text, mention, [label.split("/")[-1] for label in labels]) for text, mention, labels in FET_ROWS]
    train = write_mentions(tmp_path / "train.jsonl", rows)
    types = tmp_path / "types.txt"
    types.write_text("entity\nperson\nauthor\nlocation\ncity\norganization\ncompany\nsports_team\ntime\nwriter\n")
    summary = pretrain_ufet.main([
        "--model_name_or_path", str(checkpoint), "--train_file", train, "--validation_file", train,
        "--types_file", str(types), "--output_dir", str(tmp_path / "out"), "--per_device_train_batch_size", "4",
        "--max_steps", "3", "--eval_steps", "3", "--mlm_loss_weight", "0", "--nwp_loss_weight", "0",
        "--sampled_negative_types", "2", "--learning_rate", "1e-3",
    ])  # fmt: skip
    with pytest.raises(ValueError, match="--mlm_loss_weight must be 0 with type_space 'encoder'"):
        pretrain_ufet.main([
            "--model_name_or_path", str(checkpoint), "--train_file", train, "--validation_file", train,
            "--types_file", str(types), "--output_dir", str(tmp_path / "mlm"), "--max_steps", "1",
        ])  # fmt: skip
    assert summary["steps"] == 3 and len(seen_types) == 3
    assert all(count < 10 for count in seen_types)  # targets + 2 negatives, never the whole vocabulary
    model = AutoModel.from_pretrained(tmp_path / "out")
    assert model.config.type_space == "encoder" and model.config.num_labels == 10


def encoder_space_ufet_files(tiny_tokenizer, tmp_path: Path) -> tuple[Path, str, Path]:
    """A tiny encoder-space checkpoint, UFET-style training mentions and a types file, for type-bank runs."""
    checkpoint = tmp_path / "encoder-space"
    make_tiny_model(tiny_tokenizer, type_space="encoder").save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    rows = [(text, mention, [label.split("/")[-1] for label in labels]) for text, mention, labels in FET_ROWS]
    train = write_mentions(tmp_path / "train.jsonl", rows)
    types = tmp_path / "types.txt"
    types.write_text("entity\nperson\nauthor\nlocation\ncity\norganization\ncompany\nsports_team\ntime\nwriter\n")
    return checkpoint, train, types


def test_pretrain_ufet_with_a_type_bank_resumes_exactly(tiny_tokenizer, tmp_path):
    """All types scored each step through the bank; a run resumed at a refresh step equals the uninterrupted one."""
    checkpoint, train, types = encoder_space_ufet_files(tiny_tokenizer, tmp_path)

    def run(output: Path, *extra: str) -> dict:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        return pretrain_ufet.main([
            "--model_name_or_path", str(checkpoint), "--train_file", train, "--validation_file", train,
            "--types_file", str(types), "--output_dir", str(output), "--per_device_train_batch_size", "2",
            "--max_steps", "6", "--eval_steps", "2", "--mlm_loss_weight", "0", "--nwp_loss_weight", "0",
            "--type_bank_refresh_steps", "2", "--type_bank_fresh_negatives", "2", "--type_bank_matched_negatives", "3",
            "--learning_rate", "1e-3", *extra,
        ])  # fmt: skip

    straight = run(tmp_path / "straight")
    assert straight["steps"] == 6 and straight["type_bank_refresh_seconds"] > 0
    interrupted = tmp_path / "interrupted"
    run(interrupted, "--checkpointing_steps", "2")
    resumed = run(
        interrupted,
        "--resume_from_checkpoint", str(interrupted / "checkpoints" / "checkpoint_4"), "--overwrite_output_dir",
    )  # fmt: skip
    assert resumed["history"] == straight["history"]
    straight_weights = load_file(tmp_path / "straight" / "model.safetensors")
    resumed_weights = load_file(interrupted / "model.safetensors")
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=0, msg=name)  # bit-identical

    with pytest.raises(ValueError, match="must be a multiple of --type_bank_refresh_steps 2"):
        run(tmp_path / "bad", "--checkpointing_steps", "3")
    with pytest.raises(ValueError, match="pass one of them"):
        run(tmp_path / "both", "--sampled_negative_types", "2")


@pytest.mark.slow  # a second process: seconds, run by CI's slow set
def test_pretrain_ufet_with_a_type_bank_runs_on_two_processes(tiny_tokenizer, tmp_path):
    """The multi-CPU recipe with the bank: each process refreshes its shard of the types through
    `accelerator.gather` (the shard arithmetic and the gathered bank are checked in test_type_bank.py)."""
    checkpoint, train, types = encoder_space_ufet_files(tiny_tokenizer, tmp_path)
    result = launch_two_cpu_processes(
        "pretrain_ufet",
        ["--model_name_or_path", str(checkpoint), "--train_file", train, "--validation_file", train,
         "--types_file", str(types), "--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "1",
         "--max_steps", "4", "--eval_steps", "2", "--mlm_loss_weight", "0", "--nwp_loss_weight", "0",
         "--type_bank_refresh_steps", "2", "--type_bank_fresh_negatives", "2", "--learning_rate", "1e-3"],
        port=29533,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "all_results.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 4 and summary["type_bank_refresh_seconds"] > 0


def test_a_labels_file_sharing_no_label_with_train_says_so(tiny_checkpoint, fet_files, tmp_path):
    """Issue #26: a disjoint --labels_file left no training mention and failed in featurisation with the datasets
    error "Column 'truncated' doesn't exist"; now the file, its size, the training labels and the fix are named."""
    labels = tmp_path / "labels.txt"
    labels.write_text("/art\n/art/film\n/event\n")
    for extra in ([], ["--k_shot", "2"]):
        with pytest.raises(ValueError) as raised:
            finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path / "out", "--labels_file", str(labels),
                                       *extra))  # fmt: skip
        message = str(raised.value)
        assert f"No train mention has a label of --labels_file {labels} (3 labels: /art, /art/film, /event)" in message
        assert f"the 16 mentions of --train_file {fet_files['train']} use 7 label(s)" in message
        assert "/organization" in message and "Pass the label set of this training data" in message
    labels.write_text("\n\n")
    with pytest.raises(ValueError, match=r"--labels_file .*labels.txt lists no label; write one label per line"):
        finetune_fet.main(fet_args(tiny_checkpoint, fet_files, tmp_path / "out", "--labels_file", str(labels)))


@pytest.mark.parametrize("split, option", [("dev", "--validation_file"), ("test", "--test_file")])
def test_restricting_dev_or_test_to_no_mention_says_so(tiny_checkpoint, fet_files, tmp_path, split, option):
    """--restrict_eval_labels with a label set a dev/test file does not use emptied it: the same datasets error."""
    labels = tmp_path / "labels.txt"
    labels.write_text("/person\n/person/author\n")
    other = write_mentions(tmp_path / "other.jsonl", [(text, mention, ["/art/film"]) for text, mention, _ in FET_ROWS])
    files = {**fet_files, split: other}
    with pytest.raises(ValueError) as raised:
        finetune_fet.main(fet_args(tiny_checkpoint, files, tmp_path / "out", "--labels_file", str(labels),
                                   "--restrict_eval_labels"))  # fmt: skip
    message = str(raised.value)
    assert f"No {split} mention has a label of --labels_file {labels} (2 labels: /person, /person/author)" in message
    assert f"of {option} {other} use 1 label(s), none of them in that file (most frequent: /art/film)" in message
    assert "leave out --restrict_eval_labels" in message


def test_finetune_from_label_examples_with_interpolation_chosen_on_dev(tiny_tokenizer, fet_files, tmp_path):
    """Issue #25 item 4 (`--start_recipe keep`, the default from a FiveFine checkpoint that takes examples): the start
    holds the training mentions as label examples, and the saved model is the start-to-trained mix with the best dev
    score."""
    checkpoint = tmp_path / "encoder-space"
    make_tiny_model(tiny_tokenizer, type_space="encoder").save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    summary = finetune_fet.main(
        fet_args(str(checkpoint), fet_files, tmp_path / "out")  # auto: a FiveFine checkpoint that takes examples
    )
    interpolation = summary["interpolation"]
    assert [entry["weight"] for entry in interpolation["dev"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    chosen = next(entry for entry in interpolation["dev"] if entry["weight"] == interpolation["weight"])
    assert summary["dev_macro_f1"] == pytest.approx(chosen["macro_f1"])
    best = max(entry["macro_f1"] for entry in interpolation["dev"])
    assert chosen["macro_f1"] == best and all(  # ties go to the weight closer to the start
        entry["weight"] >= interpolation["weight"] for entry in interpolation["dev"] if entry["macro_f1"] == best
    )
    model = AutoModel.from_pretrained(tmp_path / "out")
    assert sorted(model.config.label_example_labels) == sorted(model.config.label_list())
    assert summary["start_recipe"] == "keep"

    mlm = tmp_path / "mlm-space"
    make_tiny_model(tiny_tokenizer).save_pretrained(mlm)
    tiny_tokenizer.save_pretrained(mlm)
    with pytest.raises(ValueError, match="--start_recipe keep: .* takes no label examples.*--start_recipe train"):
        finetune_fet.main(fet_args(str(mlm), fet_files, tmp_path / "mlm-out", "--start_recipe", "keep"))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    trained = finetune_fet.main(fet_args(str(mlm), fet_files, tmp_path / "mlm-auto"))  # auto: no examples, so train
    assert trained["start_recipe"] == "train" and trained["interpolation"] is None


def test_interpolation_mixes_floating_weights_and_keeps_the_rest():
    from modeling_entity_typing.training.weight_interpolation import interpolated

    start = {"w": torch.zeros(3), "ids": torch.tensor([1, 2])}
    trained = {"w": torch.ones(3) * 4, "ids": torch.tensor([5, 6])}
    mixed = interpolated(start, trained, 0.25)
    assert mixed["w"].tolist() == [1.0, 1.0, 1.0] and mixed["ids"].tolist() == [5, 6]
    assert interpolated(start, trained, 0.0)["w"].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="differ in their tensors"):
        interpolated(start, {"w": trained["w"]}, 0.5)
