"""From mention records to model inputs: templating (`featurize_mentions` / `featurize_split`) and padding into
batches (`DataCollatorForEntityTyping`). The batch keys this module produces are named here once, so the loop and
the scripts never spell them out; a family's extra training inputs come in through a `BatchExtension`.
"""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import datasets
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from ..contract import MentionEncoder
from ..mention_encoding import EncodedMention


logger = logging.getLogger(__name__)

# The model inputs of a typing forward: all that prediction passes on (labels, weights and extension inputs are
# for the loss only).
INFERENCE_KEYS = ("input_ids", "attention_mask", "mention_positions")
# The dataset row of each batch row: collated so predictions can be gathered in order, popped before the forward.
INDEX_KEY = "index"


class BatchExtension(Protocol):
    """A family's extra training inputs (e.g. FiveFine's neighbor-word prompts): columns added when mentions are
    featurised, and model inputs (`keys`) built from them when a batch is collated."""

    keys: tuple[str, ...]

    def featurize(self, mentions: list[tuple[str, int, int]], encoded: list[EncodedMention]) -> dict[str, list]:
        """Extra columns for a batch of `(text, start, end)` mentions, given their typing inputs."""
        ...

    def collate(
        self,
        features: list[dict],
        pad: Callable[[list[list[int]]], dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """The `keys` inputs of one batch; `pad` pads id lists like the typing input; `generator` is per batch."""
        ...


def featurize_mentions(
    batch: dict[str, list],
    indices: list[int],
    encoder: MentionEncoder,
    label2id: dict[str, int],
    extension: BatchExtension | None = None,
) -> dict[str, list]:
    """`datasets.map(batched=True, with_indices=True)` function: templated ids, mask position, label ids, and the
    `extension`'s columns when one is given.

    Labels outside `label2id` get no id (restrict the data first, see `mention_data.restrict_to_labels`, so that
    they are counted).
    """
    mentions = list(zip(batch["text"], batch["start"], batch["end"]))
    encoded = encoder.encode_batch(mentions)
    features = {
        INDEX_KEY: indices,
        "input_ids": [item.input_ids for item in encoded],
        "mention_position": [item.mention_position for item in encoded],
        "truncated": [item.truncated for item in encoded],
        "label_ids": [[label2id[label] for label in labels if label in label2id] for labels in batch["labels"]],
        "extra_label_ids": [
            [label2id[label] for label in labels if label in label2id] for labels in batch.get("extra_labels", [])
        ]
        or [[] for _ in encoded],
    }
    if extension is not None:
        features.update(extension.featurize(mentions, encoded))
    return features


def featurize_split(
    dataset: datasets.Dataset,
    accelerator: Accelerator,
    encoder: MentionEncoder,
    label2id: dict[str, int],
    name: str,
    extension: BatchExtension | None = None,
) -> datasets.Dataset:
    """`featurize_mentions` over a whole split, on the main process first (the others reuse its cache); logs how
    many inputs had to be cut to the template length."""
    with accelerator.main_process_first():
        features = dataset.map(
            featurize_mentions,
            batched=True,
            with_indices=True,
            fn_kwargs={"encoder": encoder, "label2id": label2id, "extension": extension},
            remove_columns=dataset.column_names,
            desc=f"templating {name}",
        )
    truncated = sum(features["truncated"])
    if truncated:
        logger.info(f"{name}: {truncated} of {len(features)} inputs cut to {encoder.max_length} word pieces.")
    return features


def step_seed(seed: int, *position: int) -> int:
    """A seed for one batch's random draws from the run's seed and the batch's position (or rows): the same in an
    uninterrupted and a resumed run, whatever else drew random numbers in between."""
    digest = hashlib.blake2b(repr((seed, *position)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31


@dataclass
class DataCollatorForEntityTyping:
    """Pads featurised mentions into model inputs; builds multi-hot `labels` and, optionally, `label_weights`.

    With `original_label_weight` set (weak UFET training), original labels weigh that much, extra (prompt) labels
    not already positive weigh `extra_label_weight`, negatives 1. An `extension` (featurised with the same one) adds
    its inputs; its random draws come from `seed` and the batch's row indices: the data loader collates a batch
    ahead of training, so the global random state at that moment differs between an uninterrupted and a resumed
    run, while the batch itself does not.
    """

    tokenizer: PreTrainedTokenizerBase
    num_labels: int
    pad_to_multiple_of: int | None = None
    original_label_weight: float | None = None
    extra_label_weight: float = 1.0
    seed: int = 0
    extension: BatchExtension | None = None

    def _pad(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        return self.tokenizer.pad(
            {"input_ids": sequences}, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
        )

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        padded = self._pad([feature["input_ids"] for feature in features])
        batch = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "mention_positions": torch.tensor([feature["mention_position"] for feature in features]),
            INDEX_KEY: torch.tensor([feature[INDEX_KEY] for feature in features]),
        }
        labels = torch.zeros(len(features), self.num_labels)
        weights = torch.ones(len(features), self.num_labels) if self.original_label_weight is not None else None
        for row, feature in enumerate(features):
            labels[row, feature["label_ids"]] = 1.0
            if weights is not None:
                original = set(feature["label_ids"])
                extra = [index for index in feature["extra_label_ids"] if index not in original]
                labels[row, extra] = 1.0
                weights[row, extra] = self.extra_label_weight
                weights[row, feature["label_ids"]] = self.original_label_weight
        batch["labels"] = labels
        if weights is not None:
            batch["label_weights"] = weights
        if self.extension is not None:
            generator = torch.Generator().manual_seed(step_seed(self.seed, *(f[INDEX_KEY] for f in features)))
            batch.update(self.extension.collate(features, self._pad, generator))
        return batch


__all__ = [
    "INDEX_KEY",
    "INFERENCE_KEYS",
    "BatchExtension",
    "DataCollatorForEntityTyping",
    "featurize_mentions",
    "featurize_split",
    "step_seed",
]
