"""Cross-C's contrastive objectives: batched tensors against a direct per-example computation, gradients, DDP."""

import json
import math
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from modeling_entity_typing import ContrastiveWeights, crossc_objective, multi_positive_contrastive_loss


def direct_loss(anchors, candidates, positive_mask, candidate_mask, temperature, denominator):
    """Eq. 5–7 written out per anchor with Python loops, as the paper states it."""
    losses = []
    for i in range(len(anchors)):
        sims = [
            torch.nn.functional.cosine_similarity(anchors[i], candidates[j], dim=0) / temperature
            for j in range(len(candidates))
        ]
        positives = [j for j in range(len(candidates)) if positive_mask[i, j] and candidate_mask[i, j]]
        if denominator == "pos+neg":
            pool = [j for j in range(len(candidates)) if candidate_mask[i, j]]
        else:
            pool = [j for j in range(len(candidates)) if candidate_mask[i, j] and not positive_mask[i, j]]
        if not positives or not pool:
            continue  # an anchor without positives (or negatives) does not count
        log_pos = torch.log(sum(torch.exp(sims[j]) for j in positives))
        log_pool = torch.log(sum(torch.exp(sims[k]) for k in pool))
        losses.append(-(log_pos - log_pool))
    return (torch.stack(losses).mean() if losses else None), len(losses)


def random_problem(seed, anchors=6, candidates=9, dim=5):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(anchors, dim, generator=generator, dtype=torch.float64)
    c = torch.randn(candidates, dim, generator=generator, dtype=torch.float64)
    positive = torch.rand(anchors, candidates, generator=generator) < 0.3
    candidate = torch.rand(anchors, candidates, generator=generator) < 0.8
    positive[0] = False  # an anchor without positives must be skipped
    return a, c, positive, candidate


@pytest.mark.parametrize("denominator", ["pos+neg", "neg"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_loss_equals_direct_computation(seed, denominator):
    a, c, positive, candidate = random_problem(seed)
    batched, count = multi_positive_contrastive_loss(a, c, positive, candidate, 0.5, denominator)
    expected, expected_count = direct_loss(a, c, positive, candidate, 0.5, denominator)
    assert count == expected_count > 0
    # the batched form computes in float32
    torch.testing.assert_close(batched.double(), expected, rtol=1e-5, atol=1e-5)


def test_gradients_match_direct_computation():
    a, c, positive, candidate = random_problem(3)
    a1, c1 = a.clone().requires_grad_(), c.clone().requires_grad_()
    a2, c2 = a.clone().requires_grad_(), c.clone().requires_grad_()
    multi_positive_contrastive_loss(a1, c1, positive, candidate, 0.5)[0].backward()
    direct_loss(a2, c2, positive, candidate, 0.5, "pos+neg")[0].backward()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c1.grad, c2.grad, rtol=1e-4, atol=1e-5)
    assert a1.grad.abs().sum() > 0


def test_temperature_and_denominator_matter():
    a, c, positive, candidate = random_problem(4)
    at_half = multi_positive_contrastive_loss(a, c, positive, candidate, 0.5)[0]
    assert not torch.isclose(at_half, multi_positive_contrastive_loss(a, c, positive, candidate, 0.25)[0])
    assert not torch.isclose(at_half, multi_positive_contrastive_loss(a, c, positive, candidate, 0.5, "neg")[0])
    # pos+neg: the pool contains the positives, so each term is >= 0
    assert at_half >= 0


def test_no_positive_gives_a_differentiable_zero():
    a = torch.randn(3, 4, requires_grad=True)
    loss, count = multi_positive_contrastive_loss(a, a, torch.zeros(3, 3, dtype=torch.bool), ~torch.eye(3).bool())
    loss.backward()
    assert count == 0 and loss.item() == 0.0 and a.grad is not None


def test_bad_arguments_are_refused():
    a = torch.randn(2, 3)
    mask = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="denominator"):
        multi_positive_contrastive_loss(a, a, mask, mask, denominator="both")
    with pytest.raises(ValueError, match="temperature"):
        multi_positive_contrastive_loss(a, a, mask, mask, temperature=0)


def objective_by_hand(embeddings, groups, langs, weights, temperature=0.5):
    """The three terms from their definitions, with `direct_loss`."""
    n = len(groups)
    same = torch.tensor([[groups[i] == groups[j] for j in range(n)] for i in range(n)])
    not_self = ~torch.eye(n, dtype=torch.bool)

    def term(anchor_langs, candidate_langs):
        rows = [i for i in range(n) if langs[i] in anchor_langs]
        cand = torch.tensor([[not_self[i, j] and langs[j] in candidate_langs for j in range(n)] for i in rows])
        return direct_loss(embeddings[rows], embeddings, same[rows], cand, temperature, "pos+neg")[0]

    source = term({0}, {0})
    # languages whose anchors have no positive in their own language (here language 2) do not count
    target_terms = [term({lang}, {lang}) for lang in sorted(set(langs) - {0})]
    target = torch.stack([loss for loss in target_terms if loss is not None]).mean()
    cross = term(set(langs) - {0}, {0})
    total = weights.source_mono * source + weights.target_mono * target + weights.cross * cross
    return total, source, target, cross


def objective_inputs():
    torch.manual_seed(5)
    groups = [0, 0, 1, 1, 2, 2, 0, 1, 0, 3, 3, 0]
    langs = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2]  # source, and two target languages
    return torch.randn(len(groups), 8, dtype=torch.float64), groups, langs


def test_objective_terms_equal_their_definitions():
    embeddings, groups, langs = objective_inputs()
    weights = ContrastiveWeights(source_mono=1.0, target_mono=0.5, cross=2.0)
    output = crossc_objective(embeddings, torch.tensor(groups), torch.tensor(langs), weights=weights)
    total, source, target, cross = objective_by_hand(embeddings, groups, langs, weights)
    for got, expected in [(output.source_mono_loss, source), (output.target_mono_loss, target)]:
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output.cross_loss.double(), cross, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output.loss.double(), total, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ablation", ["source_mono", "target_mono", "cross"])
def test_zero_weight_removes_a_term(ablation):
    embeddings, groups, langs = objective_inputs()
    full = crossc_objective(embeddings, torch.tensor(groups), torch.tensor(langs))
    ablated = crossc_objective(
        embeddings, torch.tensor(groups), torch.tensor(langs), weights=ContrastiveWeights(**{ablation: 0.0})
    )
    removed = getattr(full, f"{ablation}_loss")
    torch.testing.assert_close(ablated.loss, full.loss - removed)


def test_repeated_example_is_not_its_own_positive():
    embeddings = torch.randn(4, 6)
    embeddings[1] = embeddings[0]  # the same example drawn twice
    groups, langs = torch.tensor([0, 0, 0, 1]), torch.zeros(4, dtype=torch.long)
    with_ids = crossc_objective(embeddings, groups, langs, example_ids=torch.tensor([7, 7, 8, 9]))
    # anchors 0 and 1 keep only example 8 as positive; the duplicate leaves both pools too
    rows = torch.tensor([[False, False, True, True], [False, False, True, True], [True, True, False, True]])
    expected, _ = multi_positive_contrastive_loss(embeddings[:3], embeddings, groups[:3, None] == groups, rows)
    torch.testing.assert_close(with_ids.source_mono_loss, expected)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch, torch.distributed as dist
    from modeling_entity_typing import crossc_objective

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    embeddings = torch.randn(10, 6, dtype=torch.float64)
    groups = torch.tensor([0, 0, 1, 1, 2, 0, 1, 2, 2, 3])
    langs = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    rows = [slice(0, 6), slice(6, 10)][rank]  # unequal shards: the padding path of the all-gather
    local = embeddings[rows].clone().requires_grad_()
    output = crossc_objective(local, groups[rows], langs[rows], example_ids=torch.arange(10)[rows])
    output.loss.backward()
    json.dump({"loss": output.loss.item(), "grad": local.grad.tolist()}, open(sys.argv[1] + f"/{rank}.json", "w"))
    dist.barrier()  # neither process may exit while the other still talks to it (gloo aborts the peer)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_negatives_come_from_all_processes_with_gradients(tmp_path):
    """Two gloo processes, each with part of the batch: each process' loss and the gradient on its own rows equal a
    single process computing the same anchors against the whole batch."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    processes = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path)], env={**env, "RANK": str(rank)})
        for rank in range(2)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    results = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(2)]

    torch.manual_seed(0)
    embeddings = torch.randn(10, 6, dtype=torch.float64).requires_grad_()
    groups = torch.tensor([0, 0, 1, 1, 2, 0, 1, 2, 2, 3])
    langs = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    total = 0.0
    for rank, rows in enumerate([slice(0, 6), slice(6, 10)]):
        loss = _single_process_loss(embeddings, groups, langs, rows)
        assert math.isclose(loss.item(), results[rank]["loss"], rel_tol=1e-9)
        total = total + loss
    # DDP: each process' rows receive the gradients of every process' loss through the all-gather
    total.backward()
    for rank, rows in enumerate([slice(0, 6), slice(6, 10)]):
        torch.testing.assert_close(torch.tensor(results[rank]["grad"], dtype=torch.float64), embeddings.grad[rows])


def _single_process_loss(embeddings, groups, langs, rows):
    """What one process computes, given the whole batch as the gathered pool (no process group needed)."""
    import modeling_entity_typing.crossc.contrastive as contrastive

    local_rows = torch.arange(len(groups))[rows]

    def fake_gather(tensor):
        if tensor.dtype == torch.float64:
            return embeddings, rows.start
        # ids: the full tensor of the same kind, recognised by content of the local slice
        for candidate in (groups, langs, torch.arange(len(groups))):
            if torch.equal(candidate[local_rows], tensor):
                return candidate, rows.start
        raise AssertionError("unexpected gather")

    original = contrastive.gather_with_grad
    contrastive.gather_with_grad = fake_gather
    try:
        return crossc_objective(embeddings[rows], groups[rows], langs[rows], example_ids=local_rows).loss
    finally:
        contrastive.gather_with_grad = original
