"""Weight-space interpolation between the starting model and the fine-tuned one, the mix chosen on dev data.

`start + a * (trained - start)` for `a` in a grid (0: the start itself, 1: the fine-tuned model). Interpolated weights
often keep what the start knew (a zero-shot typer's breadth) and gain what the few examples taught (Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022); with 0 in the grid, selection can keep the start.
"""

from collections.abc import Callable, Mapping, Sequence

import torch


INTERPOLATION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state (weights and buffers), to interpolate from later."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def interpolated(
    start: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor], weight: float
) -> dict[str, torch.Tensor]:
    """`start + weight * (trained - start)` for floating-point tensors; other tensors (ids, counters) as trained."""
    if start.keys() != trained.keys():
        raise ValueError(f"The two states differ in their tensors: {sorted(start.keys() ^ trained.keys())[:5]}.")
    return {
        name: torch.lerp(start[name], tensor, weight) if tensor.is_floating_point() else tensor
        for name, tensor in trained.items()
    }


def choose_interpolation(
    model: torch.nn.Module,
    start: Mapping[str, torch.Tensor],
    evaluate: Callable[[], dict],
    selection_keys: Sequence[str],
    grid: Sequence[float] = INTERPOLATION_GRID,
) -> tuple[float, list[dict]]:
    """Score `model` (holding the trained weights) at each interpolation weight with `evaluate()` (dev data), load the
    best one (ties: the weight closer to the start), and return it with every weight's scores."""
    trained = snapshot(model)
    scored, best = [], None
    for weight in sorted(grid):
        model.load_state_dict(interpolated(start, trained, weight))  # copied into the model's own tensors
        metrics = evaluate()
        scored.append({"weight": weight, **metrics})
        key = [float(metrics[name]) for name in selection_keys]
        if best is None or key > best[0]:
            best = (key, weight)
    chosen = best[1]
    model.load_state_dict(interpolated(start, trained, chosen))
    return chosen, scored


__all__ = ["INTERPOLATION_GRID", "choose_interpolation", "interpolated", "snapshot"]
