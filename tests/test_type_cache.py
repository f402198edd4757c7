"""`TypeMatrixCache`: its invalidation rule against every way the scripts change weights (optimizer steps of
`build_optimizer`, fused or not, weight interpolation, checkpoint loading), its size and its copies."""

import copy
import pickle

import pytest
import torch

from modeling_entity_typing.fivefine.type_cache import TypeMatrixCache
from modeling_entity_typing.training import build_optimizer
from modeling_entity_typing.training.weight_interpolation import interpolated, snapshot


class _Types(torch.nn.Module):
    """A stand-in type encoder: one weight, whose "type matrix" is the weight itself times 2."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3, 2))

    def matrix(self, cache: TypeMatrixCache, calls: list) -> torch.Tensor:
        def encode() -> torch.Tensor:
            calls.append(1)
            return self.weight.detach() * 2

        return cache.get_or_encode("types", [self.weight], encode)


def _step(module: _Types, optimizer: torch.optim.Optimizer) -> None:
    (module.weight**2).sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-adamw", "default-adamw"])
def test_every_optimizer_step_of_the_scripts_drops_the_entry(fused):
    # build_optimizer picks fused AdamW for CPU tensors and the default kernel on devices fused AdamW lacks
    module, cache, calls = _Types(), TypeMatrixCache(), []
    if fused:
        optimizer = build_optimizer(module, learning_rate=0.1, weight_decay=0.0)
        assert optimizer.defaults["fused"]
    else:
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.1, fused=False)
    before = module.matrix(cache, calls)
    assert module.matrix(cache, calls) is before and len(calls) == 1
    _step(module, optimizer)
    after = module.matrix(cache, calls)
    assert len(calls) == 2 and torch.equal(after, module.weight.detach() * 2) and not torch.equal(after, before)


def test_weight_interpolation_and_checkpoint_loading_change_the_key():
    module, cache, calls = _Types(), TypeMatrixCache(), []
    start = snapshot(module)
    module.matrix(cache, calls)
    with torch.no_grad():
        trained = {"weight": torch.full((3, 2), 3.0)}
    module.load_state_dict(interpolated(start, trained, 0.5))  # what choose_interpolation does
    assert torch.equal(module.matrix(cache, calls), torch.full((3, 2), 4.0)) and len(calls) == 2
    module.load_state_dict(start)  # what a resumed run's checkpoint load does
    assert torch.equal(module.matrix(cache, calls), torch.full((3, 2), 2.0)) and len(calls) == 3


def test_writes_through_data_need_a_clear():
    module, cache, calls = _Types(), TypeMatrixCache(), []
    module.matrix(cache, calls)
    module.weight.data.fill_(5.0)
    assert torch.equal(module.matrix(cache, calls), torch.full((3, 2), 2.0))  # stale, as documented
    cache.clear()
    assert torch.equal(module.matrix(cache, calls), torch.full((3, 2), 10.0))


def test_least_recently_used_entries_are_evicted():
    cache, weight = TypeMatrixCache(size=2), torch.nn.Parameter(torch.ones(1))
    for key in ("a", "b", "a", "c"):
        cache.get_or_encode(key, [weight], lambda: torch.zeros(1))
    assert len(cache) == 2
    calls = []
    cache.get_or_encode("a", [weight], lambda: calls.append(1) or torch.zeros(1))
    cache.get_or_encode("b", [weight], lambda: calls.append(1) or torch.zeros(1))
    assert calls == [1]  # "a" was kept (used last), "b" evicted


def test_copies_start_empty_and_keep_their_size():
    module, cache, calls = _Types(), TypeMatrixCache(size=3), []
    module.matrix(cache, calls)
    for clone in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert len(clone) == 0 and clone.size == 3
