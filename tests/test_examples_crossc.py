"""Cross-C's scripts end to end on a tiny model: contrastive pretraining (outputs, ablation flags, exact resume,
two processes), batches, and fine-tuning a Cross-C checkpoint with `finetune_fet.py`."""

import json
import os

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from test_examples import fet_args, fresh_accelerate_state, launch_two_cpu_processes, load_script  # noqa: F401 (autouse fixture)
from tiny import FET_ROWS, make_tiny_crossc_model, make_tiny_tokenizer, write_mentions

from modeling_entity_typing.crossc.contrastive_batches import GroupBatchSampler


pretrain_contrastive = load_script("pretrain_contrastive")
finetune_fet = load_script("finetune_fet")

NAMES = ["mark twain", "paris", "big company", "sports team", "the city", "a town", "time", "music", "artist", "nice"]
VERBS = ["is", "wrote", "left"]


@pytest.fixture(scope="module")
def crossc_checkpoint(tmp_path_factory):
    """A tiny Cross-C model without dropout (runs compare exactly), saved with its [ENT]-extended tokenizer."""
    path = tmp_path_factory.mktemp("tiny-crossc")
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_crossc_model(tokenizer, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def examples_file(tmp_path_factory):
    """Groups of one entity in three English sentences, and a "translation" (lang xx) of each group's first one."""
    path = tmp_path_factory.mktemp("contrastive") / "examples.jsonl"
    with open(path, "w") as handle:
        for group, name in enumerate(NAMES):
            for number, verb in enumerate(VERBS):
                text = f"{name} {verb} in the city ."
                row = {"id": f"{group}-{number}", "text": text, "start": 0, "end": len(name), "lang": "en"}
                handle.write(json.dumps({**row, "group_id": f"g{group}", "entity": name}) + "\n")
            translated = f"in the city , {name} ."
            start = translated.index(name)
            row = {"id": f"{group}-0@xx", "text": translated, "start": start, "end": start + len(name), "lang": "xx"}
            handle.write(json.dumps({**row, "group_id": f"g{group}", "source_id": f"{group}-0"}) + "\n")
    return str(path)


def contrastive_args(checkpoint, examples, output_dir, *extra):
    return [
        "--model_name_or_path", checkpoint, "--train_file", examples, "--output_dir", str(output_dir),
        "--validation_groups", "0.3", "--seeds_per_batch", "3", "--positives_per_seed", "2",
        "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3", "--max_steps", "6", "--eval_steps", "2",
        "--seed", "3", *extra,
    ]  # fmt: skip


def test_group_batches_hold_seeds_positives_and_translations():
    groups = ["a", "a", "a", "b", "b", "c", "c", "a", "d"]
    ids = ["a0", "a1", "a2", "b0", "b1", "c0", "c1", "a0@zh", "d0"]
    sources = [None] * 7 + ["a0", None]
    sampler = GroupBatchSampler(groups, 3, 1, ids, sources, seed=1)
    assert sampler.skipped_groups == 1 and len(sampler) == 1  # "d" has one example
    batches = [list(batch) for epoch in range(20) for batch in (sampler.set_epoch(epoch), *sampler)[1:]]
    for batch in batches:
        assert len({groups[row] for row in batch}) == 3 and len(set(batch)) == len(batch)
        for group in "abc":
            assert sum(groups[row] == group for row in batch) >= 2
        runs = _runs(batch, groups)  # each group's rows come together, its seed first
        if runs["a"][0] == 0:
            assert 7 in runs["a"], "the seed a0 came without its translation"
    assert any(runs["a"][0] == 0 for runs in [_runs(batch, groups) for batch in batches])
    sampler.set_epoch(4)
    assert list(sampler) == list(sampler)  # a function of (seed, epoch) only
    with pytest.raises(ValueError, match="groups have two or more"):
        GroupBatchSampler(["a", "b"], 3, 1)


def _runs(batch, groups):
    runs = {}
    for row in batch:
        runs.setdefault(groups[row], []).append(row)
    return runs


def test_pretrain_contrastive_end_to_end(crossc_checkpoint, examples_file, tmp_path):
    summary = pretrain_contrastive.main(contrastive_args(crossc_checkpoint, examples_file, tmp_path))
    saved = json.loads((tmp_path / "all_results.json").read_text())
    assert [entry["step"] for entry in saved["history"]] == [2, 4, 6]
    assert 0.0 <= saved["dev_group_precision_at_1"] <= 1.0 and saved["languages"] == {"en": 0, "xx": 1}
    assert summary["steps"] == 6 and all(entry["train_loss"] > 0 for entry in saved["history"])
    before = load_file(os.path.join(crossc_checkpoint, "model.safetensors"))
    after = load_file(tmp_path / "model.safetensors")
    assert set(after) == set(before)  # the inner model is saved, not the wrapper
    assert not torch.equal(after["bert.encoder.layer.0.attention.self.query.weight"], before[
        "bert.encoder.layer.0.attention.self.query.weight"])  # fmt: skip
    torch.testing.assert_close(after["type_matrix.weight"], before["type_matrix.weight"])  # frozen: no labels


def test_ablation_flags_change_the_objective(crossc_checkpoint, examples_file, tmp_path):
    full = pretrain_contrastive.main(contrastive_args(crossc_checkpoint, examples_file, tmp_path / "full"))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    no_cross = pretrain_contrastive.main(
        contrastive_args(crossc_checkpoint, examples_file, tmp_path / "nocc", "--cross_weight", "0")
    )
    assert no_cross["history"][0]["train_loss"] != pytest.approx(full["history"][0]["train_loss"])
    with pytest.raises(ValueError, match="nothing to train"):
        pretrain_contrastive.parse_args(
            contrastive_args(
                crossc_checkpoint,
                examples_file,
                tmp_path,
                "--source_mono_weight",
                "0",
                "--target_mono_weight",
                "0",
                "--cross_weight",
                "0",
            )  # fmt: skip
        )


def test_pretrain_contrastive_resumes_exactly(crossc_checkpoint, examples_file, tmp_path):
    straight = pretrain_contrastive.main(contrastive_args(crossc_checkpoint, examples_file, tmp_path / "straight"))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    interrupted = tmp_path / "interrupted"
    pretrain_contrastive.main(
        contrastive_args(
            crossc_checkpoint, examples_file, interrupted, "--max_steps", "4", "--checkpointing_steps", "3"
        )
    )
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    checkpoint = str(interrupted / "checkpoints" / "checkpoint_3")  # mid-epoch (2 batches per epoch here)
    resumed = pretrain_contrastive.main(
        contrastive_args(crossc_checkpoint, examples_file, interrupted, "--resume_from_checkpoint", checkpoint)
    )
    assert resumed["history"] == straight["history"]
    straight_weights = load_file(tmp_path / "straight" / "model.safetensors")
    for name, tensor in load_file(interrupted / "model.safetensors").items():
        torch.testing.assert_close(tensor, straight_weights[name], rtol=0, atol=0, msg=name)  # bit-identical


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_pretrain_contrastive_on_two_processes(crossc_checkpoint, examples_file, tmp_path):
    """The multi-CPU recipe runs the objective with negatives gathered across two gloo processes."""
    arguments = contrastive_args(crossc_checkpoint, examples_file, tmp_path, "--max_steps", "2")
    result = launch_two_cpu_processes("pretrain_contrastive", arguments, port=29523)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "all_results.json").read_text())
    assert saved["num_processes"] == 2 and saved["steps"] == 2


def test_finetune_fet_from_a_crossc_checkpoint(crossc_checkpoint, tmp_path):
    files = {
        split: write_mentions(tmp_path / f"{split}.jsonl", rows)
        for split, rows in (("train", FET_ROWS), ("dev", FET_ROWS[::2]), ("test", FET_ROWS[1::2]))
    }
    summary = finetune_fet.main(
        fet_args(
            crossc_checkpoint,
            files,
            tmp_path / "out",
            "--metric_for_best_model",
            "micro_f1",
            "--decision",
            "threshold",
            "--threshold",
            "0.4",
            "--no_single_path_train",  # the threshold rule types every level of the path
        )  # fmt: skip
    )
    assert summary["model_type"] == "crossc" and summary["num_types"] == 7
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "crossc" and config["threshold"] == 0.4
    assert sorted(config["id2label"].values()) == sorted({label for _, _, labels in FET_ROWS for label in labels})
    assert 0.0 <= summary["test_micro_f1"] <= 1.0 and summary["test_num_mentions"] == 8


def test_a_checkpoint_and_the_plain_encoder_it_holds_fine_tune_identically(tmp_path):
    """Fine-tuning depends on the weights and the seed only, not on how the model was built: the plain encoder and a
    Cross-C checkpoint holding exactly its weights (as a pretraining run that changed nothing would save) train to
    the same numbers, dropout on. Without this, comparing a pretrained encoder with the plain one (Cross-C vs F-T)
    compares two draws of the type initialisation and the dropout stream as well."""
    from tiny import save_tiny_sentencepiece_encoder

    from modeling_entity_typing import MBertForContrastiveTyping
    from modeling_entity_typing.crossc import UNTYPED_LABEL

    encoder = save_tiny_sentencepiece_encoder(tmp_path / "encoder")
    checkpoint = tmp_path / "untrained-crossc"
    MBertForContrastiveTyping.from_encoder(encoder, [UNTYPED_LABEL], save_directory=checkpoint)
    files = {
        split: write_mentions(tmp_path / f"{split}.jsonl", rows)
        for split, rows in (("train", FET_ROWS), ("dev", FET_ROWS[::2]), ("test", FET_ROWS[1::2]))
    }
    summaries, weights = [], []
    for name, start in (("plain", encoder), ("checkpoint", str(checkpoint))):
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        extra = ["--model_family", "crossc", "--decision", "threshold", "--metric_for_best_model", "micro_f1",
                 "--no_single_path_train", "--seed", "11"]  # fmt: skip
        summaries.append(finetune_fet.main(fet_args(start, files, tmp_path / name, *extra)))
        weights.append(load_file(tmp_path / name / "model.safetensors"))
    assert summaries[0]["history"] == summaries[1]["history"]
    assert summaries[0]["test_micro_f1"] == summaries[1]["test_micro_f1"]
    assert set(weights[0]) == set(weights[1])
    for key, tensor in weights[0].items():
        torch.testing.assert_close(tensor, weights[1][key], rtol=0, atol=0, msg=key)
