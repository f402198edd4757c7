"""`TypeBank`: every type scored each step, the batch's targets fresh, the others from a bank refreshed every N."""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny import MENTIONS, encode_batch, make_tiny_model, make_tiny_tokenizer

from modeling_entity_typing.losses import multilabel_bce
from modeling_entity_typing.training import TypeBank


@pytest.fixture
def model_and_batch():
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer, type_space="encoder").eval()  # eval: no dropout, so paths compare exactly
    batch = dict(encode_batch(model, tokenizer, MENTIONS[:3]))
    labels = torch.zeros(3, model.config.num_labels)
    labels[0, 0] = labels[1, 1] = labels[2, 1] = 1.0  # targets: types 0 and 1
    batch["labels"] = labels
    return model, batch


def test_a_fresh_bank_scores_exactly_as_encoding_every_type(model_and_batch):
    model, batch = model_and_batch
    bank = TypeBank(refresh_steps=5)
    banked = model(**bank.batch_inputs(batch, model, step=0))
    direct = model(**batch)
    torch.testing.assert_close(banked.logits, direct.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(banked.loss, direct.loss, rtol=0, atol=1e-6)
    assert bank.batch_inputs(batch, model, step=1)["type_bank_rows"].tolist() == [0, 1]


def test_gradients_are_the_full_loss_with_only_the_negative_type_vectors_held_fixed(model_and_batch):
    model, batch = model_and_batch
    TypeBank(refresh_steps=5).batch_inputs(batch, model, step=0)  # a refresh must leave no gradient behind
    bank = TypeBank(refresh_steps=5)
    model(**bank.batch_inputs(batch, model, step=0)).loss.backward()
    banked = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    types = model.encode_types(model.type_phrase_ids, model.type_phrase_mask)
    is_target = batch["labels"].bool().any(0)[:, None]
    held = torch.where(is_target, types, types.detach())
    multilabel_bce(outputs.mention_embeddings @ held.T, batch["labels"]).backward()
    expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert banked.keys() == expected.keys() and banked
    for name, gradient in expected.items():
        torch.testing.assert_close(banked[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_refreshes_once_per_multiple_of_the_interval_from_the_current_weights(model_and_batch):
    model, batch = model_and_batch
    model.train()
    bank = TypeBank(refresh_steps=2)
    refreshed = []
    for step in [0, 0, 1, 2, 2, 3, 4]:  # repeated steps: micro-batches of a gradient accumulation window
        before = bank.refreshed_at, len(bank.refresh_seconds)
        bank.batch_inputs(batch, model, step)
        if len(bank.refresh_seconds) > before[1]:
            refreshed.append(step)
        if step == 2 and len(refreshed) == 2:
            with torch.no_grad():  # change the weights between refreshes: the next refresh must see it
                model.bert.embeddings.word_embeddings.weight.mul_(1.5)
    assert refreshed == [0, 2, 4]
    assert model.training  # a refresh runs in eval mode and restores the mode it found
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(bank.matrix, model.type_embeddings(), rtol=0, atol=0)
    assert not bank.matrix.requires_grad


def test_a_bank_first_built_off_the_schedule_warns(model_and_batch, caplog):
    model, batch = model_and_batch
    with caplog.at_level(logging.WARNING, logger="modeling_entity_typing.training.type_bank"):
        TypeBank(refresh_steps=4).batch_inputs(batch, model, step=3)
    assert "not a multiple of 4" in caplog.text


def test_bad_inputs_are_refused(model_and_batch):
    model, batch = model_and_batch
    with pytest.raises(ValueError, match="refresh_steps must be at least 1"):
        TypeBank(refresh_steps=0)
    inputs = TypeBank(refresh_steps=1).batch_inputs(batch, model, step=0)
    inputs["type_phrase_ids"] = inputs["type_phrase_ids"][:1]
    with pytest.raises(ValueError, match="names 2 rows; pass their phrases"):
        model(**inputs)


def test_matched_negatives_give_the_sampled_loss_in_expectation(model_and_batch):
    """With 5 types, targets {0, 1} and one sampled negative, the draw is type 2, 3 or 4 with equal chance: the
    bank's weighted loss must equal the mean of the three sampled losses exactly."""
    model, batch = model_and_batch
    batch["label_weights"] = 1.0 + batch["labels"] * 4.0  # original labels weigh 5, as in UFET training
    banked = model(**TypeBank(refresh_steps=5, matched_negatives=1).batch_inputs(batch, model, step=0)).loss
    sampled = []
    for negative in (2, 3, 4):
        keep = torch.tensor([0, 1, negative])
        sampled.append(
            model(
                **{**batch, "labels": batch["labels"][:, keep], "label_weights": batch["label_weights"][:, keep]},
                type_phrase_ids=model.type_phrase_ids[keep],
                type_phrase_mask=model.type_phrase_mask[keep],
            ).loss
        )
    torch.testing.assert_close(banked, torch.stack(sampled).mean(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="matched_negatives must be at least 1"):
        TypeBank(refresh_steps=1, matched_negatives=0)


def test_fresh_negatives_give_every_type_its_full_gradient_in_expectation(model_and_batch):
    """Targets {0, 1} are always fresh; one of types 2, 3, 4 is drawn fresh with its gradient scaled by 3. The mean
    gradient over the three draws must be the gradient of the same loss with every type vector fresh."""
    model, batch = model_and_batch
    bank = TypeBank(refresh_steps=5, matched_negatives=2, fresh_negatives=1)
    by_draw = {}
    for seed in range(100):
        torch.manual_seed(seed)
        inputs = bank.batch_inputs(batch, model, step=0)
        drawn = int(inputs["type_bank_rows"][-1])
        assert inputs["type_bank_rows"][:2].tolist() == [0, 1] and inputs["type_bank_row_scale"].tolist() == [1, 1, 3]
        if drawn not in by_draw:
            model.zero_grad(set_to_none=True)
            model(**inputs).loss.backward()
            by_draw[drawn] = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert sorted(by_draw) == [2, 3, 4]

    model.zero_grad(set_to_none=True)
    weighted = bank.batch_inputs(batch, model, step=0)["label_weights"]
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    types = model.encode_types(model.type_phrase_ids, model.type_phrase_mask)
    multilabel_bce(outputs.mention_embeddings @ types.T, batch["labels"], weighted).backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            mean = torch.stack([grads[name] for grads in by_draw.values()]).mean(0)
            torch.testing.assert_close(mean, p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("num_processes", [2, 3, 4])  # 4: the last shard is empty
def test_a_sharded_refresh_gathers_the_same_bank(model_and_batch, num_processes):
    """Each process encodes one contiguous shard (the last ones short or empty) and the gather joins them: the bank
    is the single-process one. The gather is simulated: each process' padded shard is recorded, then concatenated
    in process order as `accelerator.gather` does."""
    model, _ = model_and_batch
    single = TypeBank(refresh_steps=5)
    single.refresh(model, step=0)
    shards = []

    def record(tensor):
        shards.append(tensor.clone())
        return torch.zeros(tensor.size(0) * num_processes, tensor.size(1))

    for index in range(num_processes):
        TypeBank(refresh_steps=5, process_index=index, num_processes=num_processes, gather=record).refresh(model, 0)
    assert len({shard.shape for shard in shards}) == 1  # equal shapes, as a gather needs
    gathered = torch.cat(shards)[: single.matrix.size(0)]
    torch.testing.assert_close(gathered, single.matrix, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="needs `gather`"):
        TypeBank(refresh_steps=5, num_processes=2)
    with pytest.raises(ValueError, match="process_index 2 is outside 0..1"):
        TypeBank(refresh_steps=5, process_index=2, num_processes=2, gather=record)


SHARDED_REFRESH_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from accelerate import Accelerator
    sys.path.insert(0, sys.argv[2])
    from tiny import make_tiny_model, make_tiny_tokenizer
    from modeling_entity_typing.training import TypeBank

    accelerator = Accelerator(cpu=True)
    model = make_tiny_model(make_tiny_tokenizer(), type_space="encoder").eval()
    bank = TypeBank(5, process_index=accelerator.process_index, num_processes=accelerator.num_processes,
                    gather=accelerator.gather)
    bank.refresh(model, step=0)
    torch.save(bank.matrix, f"{sys.argv[1]}/bank{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    """
)


@pytest.mark.slow  # two processes: seconds, run by CI's slow set
def test_a_refresh_sharded_over_two_processes_gives_both_the_single_process_bank(model_and_batch, tmp_path):
    """The real gather (`accelerator.gather` over gloo, as `pretrain_ufet.py` passes it): both processes end with the
    bank one process computes alone."""
    model, _ = model_and_batch
    single = TypeBank(refresh_steps=5)
    single.refresh(model, step=0)
    script = tmp_path / "sharded_refresh.py"
    script.write_text(SHARDED_REFRESH_SCRIPT)
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531",
               str(script), str(tmp_path), str(Path(__file__).parent)]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    banks = [torch.load(tmp_path / f"bank{index}.pt") for index in range(2)]
    torch.testing.assert_close(banks[0], banks[1], rtol=0, atol=0)  # one gathered tensor, the same everywhere
    torch.testing.assert_close(banks[0], single.matrix, rtol=0, atol=1e-6)
