"""Batches for Cross-C's contrastive pretraining: N seed groups, K positives each, mentions masked at random.

Input rows are mention examples as written by `examples/build_contrastive_data.py` (`id`, `text`, `start`, `end`,
`lang`, `group_id`, `source_id` for translations). A batch takes N groups; from each, one seed example, up to K
other members as its positives, and the seed's translations (so the cross-lingual term always has a pair).
"""

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


class GroupBatchSampler:
    """Yields lists of row indices: `seeds_per_batch` groups x (1 seed + up to `positives_per_seed` + translations).

    One epoch visits every group once as a seed group (groups in a seeded shuffle, the last incomplete batch
    dropped). Randomness depends only on `(seed, epoch)`, so a resumed run sees the same batches.
    """

    def __init__(
        self,
        group_ids: Sequence[str],
        seeds_per_batch: int,
        positives_per_seed: int,
        example_ids: Sequence[str] | None = None,
        source_ids: Sequence[str | None] | None = None,
        seed: int = 0,
    ):
        if seeds_per_batch < 2:
            raise ValueError(f"`seeds_per_batch` must be >= 2 so that a batch has negatives, got {seeds_per_batch}.")
        if positives_per_seed < 1:
            raise ValueError(f"`positives_per_seed` must be >= 1, got {positives_per_seed}.")
        members: dict[str, list[int]] = defaultdict(list)
        for row, group in enumerate(group_ids):
            members[group].append(row)
        self.groups = {group: rows for group, rows in members.items() if len(rows) >= 2}
        self.skipped_groups = len(members) - len(self.groups)
        if len(self.groups) < seeds_per_batch:
            raise ValueError(
                f"Only {len(self.groups)} groups have two or more examples; a batch needs {seeds_per_batch}. "
                "Mine more data or lower --seeds_per_batch."
            )
        self.translations: dict[int, list[int]] = defaultdict(list)
        if example_ids is not None and source_ids is not None:
            row_of = {example_id: row for row, example_id in enumerate(example_ids)}
            for row, source in enumerate(source_ids):
                if source is not None and source in row_of:
                    self.translations[row_of[source]].append(row)
        self.seeds_per_batch, self.positives_per_seed, self.seed = seeds_per_batch, positives_per_seed, seed
        self.epoch = 0
        # accelerate forwards `set_epoch` to `batch_sampler.sampler` when it shards batches across processes.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.groups) // self.seeds_per_batch

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(f"{self.seed}-{self.epoch}")
        order = sorted(self.groups)
        rng.shuffle(order)
        for start in range(0, len(self) * self.seeds_per_batch, self.seeds_per_batch):
            batch = []
            for group in order[start : start + self.seeds_per_batch]:
                rows = self.groups[group]
                seed_row = rng.choice(rows)
                others = [row for row in rows if row != seed_row]
                picked = rng.sample(others, min(self.positives_per_seed, len(others)))
                extra = [row for row in self.translations.get(seed_row, []) if row not in picked]
                batch.extend([seed_row, *picked, *extra])
            yield batch


@dataclass
class DataCollatorForContrastive:
    """Pads featurised mention examples, each in both forms: as written and with the mention masked.

    Features carry `input_ids` / `masked_input_ids` (marker templates) with `mention_position` /
    `masked_mention_position`, `group_index`, `lang_index` and `index` (the row, used as example id so a row drawn
    twice is never its own positive). Which rows get masked is decided by `mask_mentions` in the training step, not
    here: accelerate collates one batch ahead, so randomness drawn while collating would not survive a resume.
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None
    with_masked: bool = True

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        keys = ["input_ids", "masked_input_ids"] if self.with_masked else ["input_ids"]
        longest = max(len(f[key]) for f in features for key in keys)
        batch = {
            "group_ids": torch.tensor([f["group_index"] for f in features]),
            "lang_ids": torch.tensor([f["lang_index"] for f in features]),
            "example_ids": torch.tensor([f["index"] for f in features]),
        }
        for key, prefix in zip(keys, ["", "masked_"]):
            padded = self.tokenizer.pad(
                {"input_ids": [f[key] for f in features]},
                padding="max_length",
                max_length=longest,
                pad_to_multiple_of=self.pad_to_multiple_of,
                return_tensors="pt",
            )
            batch[f"{prefix}input_ids"] = padded["input_ids"]
            batch[f"{prefix}attention_mask"] = padded["attention_mask"]
            batch[f"{prefix}mention_positions"] = torch.tensor([f[f"{prefix}mention_position"] for f in features])
        return batch


def mask_mentions(batch: dict[str, torch.Tensor], probability: float, generator: torch.Generator) -> dict:
    """Use the masked form of each row with `probability` (Cross-C: 0.5); drops the `masked_*` inputs."""
    chosen = torch.rand(len(batch["input_ids"]), generator=generator) < probability
    chosen = chosen.to(batch["input_ids"].device)
    for key in ("input_ids", "attention_mask", "mention_positions"):
        masked = batch.pop(f"masked_{key}")
        rows = chosen.view(-1, *([1] * (masked.dim() - 1)))
        batch[key] = torch.where(rows, masked, batch[key])
    return batch


__all__ = ["DataCollatorForContrastive", "GroupBatchSampler", "mask_mentions"]
