"""A type bank: train against every type at about the cost of the batch, when type phrases go through the encoder.

Under FiveFine's `type_space="encoder"` a step that re-encodes all 10,331 UFET type phrases with gradients runs the
encoder over ~30x the batch's own word pieces. The bank keeps all type vectors, computed without gradients in eval
mode, and recomputes them every `refresh_steps` optimizer steps. Each step scores the batch against every type:
the types the batch is labelled with, plus `fresh_negatives` others drawn at random, are re-encoded now with
gradients; all other types are read from the bank (up to `refresh_steps` steps stale, no gradient). This is the
asynchronous index refresh of dense retrievers (e.g. ANCE: Xiong et al., ICLR 2021), with the negatives' type-side
gradient sampled: each fresh negative's gradient is scaled by (non-target types / fresh negatives), so that in
expectation every negative type gets the gradient of the full loss. Without that sample the type side only ever
learns from positives, and UFET dev macro-F1 stalled at 25 (BENCHMARKS.md).

With `matched_negatives=k` the non-target types are weighted so that the loss equals, in expectation over the draw,
the loss against the batch's targets plus `k` sampled negatives (`sample_type_columns`): the same objective as the
sampled recipe, without its sampling noise on the mention side. The plain full BCE (`None`) averages every target
over all 10,331 types, which dilutes the positives' gradient ~20x against a 512-negative recipe; on UFET crowd it
stayed near the label prior after 100 steps (BENCHMARKS.md).

A refresh depends on the weights only (eval mode: no dropout, no random draws), so a run resumed at a step that is a
multiple of `refresh_steps` rebuilds exactly the bank the uninterrupted run had; `pretrain_ufet.py` requires
`--checkpointing_steps` to be such a multiple. The fresh negatives are drawn from the global generator, which the
training loop seeds per batch.

Under data parallelism (`num_processes > 1` with a `gather`, e.g. `accelerator.gather`) each process encodes one
contiguous shard of the types and the shards are gathered, so a refresh costs each process 1 / num_processes of the
work instead of all of it, and every process holds the same bank (the gathered tensor, identical everywhere).
"""

import logging
import math
import time
from collections.abc import Callable

import torch

from ..contract import EntityTypingModel
from .type_sampling import draw_negatives, target_columns


logger = logging.getLogger(__name__)


class TypeBank:
    """All type vectors of a model's configured label set, refreshed every `refresh_steps` optimizer steps (for
    families that score subsets of their types: `supports_type_subsets`)."""

    def __init__(
        self,
        refresh_steps: int,
        matched_negatives: int | None = None,
        fresh_negatives: int = 0,
        process_index: int = 0,
        num_processes: int = 1,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        """`gather` concatenates a tensor of equal shape from every process in process order (`accelerator.gather`);
        it is required when `num_processes > 1`, so that the refresh is split across the processes."""
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process_index {process_index} is outside 0..{num_processes - 1} (num_processes).")
        if num_processes > 1 and gather is None:
            raise ValueError(
                "num_processes > 1 needs `gather` (e.g. `accelerator.gather`) to share the refreshed shards."
            )
        if refresh_steps < 1:
            raise ValueError(f"refresh_steps must be at least 1, got {refresh_steps}.")
        if matched_negatives is not None and matched_negatives < 1:
            raise ValueError(
                f"matched_negatives must be at least 1 (or None: the full loss), got {matched_negatives}."
            )
        if fresh_negatives < 0:
            raise ValueError(f"fresh_negatives must be >= 0, got {fresh_negatives}.")
        self.refresh_steps = refresh_steps
        self.matched_negatives = matched_negatives
        self.fresh_negatives = fresh_negatives
        self.process_index, self.num_processes, self.gather = process_index, num_processes, gather
        self.matrix: torch.Tensor | None = None
        self.refreshed_at: int | None = None
        self.refresh_seconds: list[float] = []

    def refresh(self, model: EntityTypingModel, step: int) -> None:
        """Recompute every type vector from `model`'s current weights (eval mode, no gradients)."""
        was_training = model.training
        started = time.perf_counter()
        model.eval()
        with torch.no_grad():
            self.matrix = self._encode_all_types(model)
        model.train(was_training)
        self.refresh_seconds.append(time.perf_counter() - started)
        if self.refreshed_at is None and step % self.refresh_steps:
            logger.warning(
                f"Type bank built at step {step}, not a multiple of {self.refresh_steps}: a run resumed here differs "
                "from an uninterrupted one until the next refresh."
            )
        self.refreshed_at = step
        logger.debug(f"Type bank refreshed at step {step} in {self.refresh_seconds[-1]:.1f} s.")

    def _encode_all_types(self, model: EntityTypingModel) -> torch.Tensor:
        """Every type vector; with several processes, this process' contiguous shard, gathered from all."""
        if self.num_processes == 1:
            return model.type_embeddings().detach().clone()
        num_types = model.config.num_labels
        shard = math.ceil(num_types / self.num_processes)
        begin = min(self.process_index * shard, num_types)
        rows = torch.arange(begin, min(begin + shard, num_types), device=model.device)
        local = model.type_embeddings(**model.type_subset_inputs(rows))
        # equal shapes for the gather: the last shards may be short (or empty); their padding is cut off below
        padded = local.new_zeros(shard, local.size(1))
        padded[: local.size(0)] = local
        return self.gather(padded)[:num_types].clone()

    def batch_inputs(self, batch: dict, model: EntityTypingModel, step: int) -> dict:
        """`batch` plus the inputs that make `model` score it against the bank with its target types fresh.

        `step` is the number of optimizer steps done; the bank is refreshed when it reaches a new multiple of
        `refresh_steps` (once per step, however many micro-batches a gradient accumulation window holds).
        """
        due = step % self.refresh_steps == 0 and step != self.refreshed_at
        if self.matrix is None or due:
            self.refresh(model, step)
        labels = batch["labels"]
        targets = target_columns(labels)
        device = labels.device
        if self.matched_negatives is not None:
            batch = {**batch, "label_weights": self._matched_weights(labels, targets, batch.get("label_weights"))}
        rows, scale = self._fresh_rows(labels.size(1), targets)
        return {
            **batch,
            "type_bank": self.matrix.to(device),
            "type_bank_rows": rows,
            "type_bank_row_scale": scale,
            **{name: tensor.to(device) for name, tensor in model.type_subset_inputs(rows.to(model.device)).items()},
        }

    def _fresh_rows(self, num_types: int, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets plus `fresh_negatives` random others, and each row's gradient scale: 1 for a target,
        (non-target types / fresh negatives) for a negative, its inverse chance of being drawn."""
        drawn, num_others = draw_negatives(num_types, targets, self.fresh_negatives)
        scale = torch.ones(targets.numel() + drawn.numel(), device=targets.device)
        if drawn.numel():
            scale[targets.numel() :] = num_others / drawn.numel()
        return torch.cat([targets, drawn]), scale

    def _matched_weights(self, labels: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """BCE weights under which the mean over all columns equals, in expectation, the mean over the targets plus
        `matched_negatives` columns drawn uniformly from the others (each drawn with probability k / others)."""
        num_types, num_targets = labels.size(1), rows.numel()
        others = num_types - num_targets
        drawn = min(self.matched_negatives, others)
        column = torch.full((num_types,), drawn / others if others else 0.0, device=labels.device)
        column[rows] = 1.0
        base = torch.ones_like(labels, dtype=torch.float32) if weights is None else weights.float()
        return base * column * (num_types / (num_targets + drawn))


__all__ = ["TypeBank"]
