"""Scores a user can threshold: Platt scaling of the type logits, and how calibrated the scores are.

A model's probabilities are `sigmoid(slope * logit + offset)`, with `slope > 0`, so calibration never changes which
label ranks above which, nor (with the threshold mapped through it) which labels the threshold rule predicts. The two
numbers are fitted on dev data (`fit_platt`) and stored in the config (`calibration_slope`, `calibration_offset`).

Calibration is measured on the labels a user looks at: each mention's `k` best-scored labels, a pair counted correct
when the label is gold. Over all (mention, label) pairs of a 10,331-type vocabulary the near-zero negatives would make
any model look calibrated.
"""

import logging
import math
from dataclasses import dataclass

import torch

from .layers import dot_product_scores


logger = logging.getLogger(__name__)

RELIABILITY_BINS = 10  # equal-width probability bins of the reliability curve and the ECE
TOP_K = 10  # labels per mention whose scores are judged (what a user reads off `top_k`)


@dataclass(frozen=True)
class PlattScaling:
    """`logit -> slope * logit + offset`, slope > 0: a monotone map that turns scores into calibrated ones."""

    slope: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        if not (math.isfinite(self.slope) and math.isfinite(self.offset) and self.slope > 0):
            raise ValueError(
                f"Platt scaling needs a finite slope > 0 (a monotone map keeps every ranking) and a finite offset, "
                f"got slope {self.slope!r}, offset {self.offset!r}."
            )

    @classmethod
    def of(cls, config) -> "PlattScaling":
        """The scaling a model's config holds (the identity for a config that was never calibrated)."""
        return cls(config.calibration_slope, config.calibration_offset)

    @property
    def is_identity(self) -> bool:
        return self.slope == 1.0 and self.offset == 0.0

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.is_identity else logits * self.slope + self.offset

    def probability(self, probability: float) -> float:
        """A probability of the uncalibrated scores (a decision threshold) as the calibrated scores give it."""
        if probability in (0.0, 1.0):
            return probability
        logit = math.log(probability) - math.log1p(-probability)
        return 1.0 / (1.0 + math.exp(-(self.slope * logit + self.offset)))

    def then(self, other: "PlattScaling") -> "PlattScaling":
        """This scaling followed by `other`, as one."""
        return PlattScaling(other.slope * self.slope, other.slope * self.offset + other.offset)

    def write_to(self, config) -> None:
        config.calibration_slope, config.calibration_offset = float(self.slope), float(self.offset)


def calibrated_scores(mention_embeddings: torch.Tensor, type_vectors: torch.Tensor, config) -> torch.Tensor:
    """The logits of every family: mention vectors against type vectors, through the config's Platt scaling."""
    return PlattScaling.of(config).apply(dot_product_scores(mention_embeddings, type_vectors))


def reset_calibration(config) -> None:
    """Training changes the scores a fitted scaling was fitted to: start from the identity (and say so)."""
    if not PlattScaling.of(config).is_identity:
        logger.info(
            f"Calibration (slope {config.calibration_slope:.4g}, offset {config.calibration_offset:.4g}) reset to "
            "the identity for training: it was fitted to the checkpoint's own scores. Fit it again on dev data "
            "after training (`pretrain_ufet.py --calibrate`)."
        )
        PlattScaling().write_to(config)


def top_k_pairs(logits: torch.Tensor, gold: torch.Tensor, k: int = TOP_K) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of each row's `k` best labels and whether each is gold (`gold`: a boolean matrix like `logits`)."""
    k = min(k, logits.shape[-1])
    top, columns = logits.topk(k, dim=-1)
    return top.reshape(-1), gold.gather(-1, columns).reshape(-1)


def fit_platt(logits: torch.Tensor, correct: torch.Tensor, steps: int = 200) -> PlattScaling:
    """The Platt scaling of `logits` (flat, uncalibrated) that minimises the log-loss against `correct` (0/1).

    The slope is fitted as `exp(s)`, so it stays positive; L-BFGS on two numbers converges in a few dozen steps.
    """
    logits, targets = logits.double().reshape(-1), correct.double().reshape(-1)
    if logits.numel() == 0 or targets.min() == targets.max():
        raise ValueError(
            f"Calibration needs scored pairs of both kinds, correct and wrong; got {logits.numel()} pairs, "
            f"{int(targets.sum())} correct. Fit it on a dev set whose labels the model's label set covers."
        )
    log_slope = torch.zeros((), dtype=torch.float64, requires_grad=True)
    offset = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_slope, offset], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits * log_slope.exp() + offset, targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return PlattScaling(float(log_slope.detach().exp()), float(offset.detach()))


def reliability(probabilities: torch.Tensor, correct: torch.Tensor, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Per equal-width probability bin: its range, pair count, mean probability and share correct (empty: None)."""
    probabilities, correct = probabilities.double().reshape(-1), correct.double().reshape(-1)
    which = (probabilities * bins).long().clamp(max=bins - 1)
    curve = []
    for index in range(bins):
        members = which == index
        count = int(members.sum())
        curve.append(
            {
                "low": index / bins,
                "high": (index + 1) / bins,
                "count": count,
                "mean_probability": float(probabilities[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return curve


def expected_calibration_error(curve: list[dict]) -> float:
    """ECE of a reliability curve: the pair-weighted mean gap between probability and share correct."""
    total = sum(point["count"] for point in curve)
    if not total:
        raise ValueError("The reliability curve holds no scored pair.")
    gaps = (point["count"] * abs(point["mean_probability"] - point["accuracy"]) for point in curve if point["count"])
    return sum(gaps) / total


def calibration_report(logits: torch.Tensor, gold: torch.Tensor, scaling: PlattScaling, k: int = TOP_K) -> dict:
    """ECE and reliability curve of the top-`k` labels of every row, under `scaling` (logits: uncalibrated)."""
    top, correct = top_k_pairs(logits, gold, k)
    curve = reliability(scaling.apply(top).sigmoid(), correct)
    return {"ece": expected_calibration_error(curve), "top_k": k, "pairs": int(top.numel()), "reliability": curve}


__all__ = [
    "RELIABILITY_BINS",
    "TOP_K",
    "PlattScaling",
    "calibrated_scores",
    "calibration_report",
    "expected_calibration_error",
    "fit_platt",
    "reliability",
    "reset_calibration",
    "top_k_pairs",
]
