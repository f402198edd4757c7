"""From mention records to model inputs: templating (`featurize_mentions` / `featurize_split`) and padding into
batches (`DataCollatorForEntityTyping`). The batch keys this module produces are named here once, so the loop and
the scripts never spell them out.
"""

import hashlib
import logging
from dataclasses import dataclass

import datasets
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from ..contract import MentionEncoder


logger = logging.getLogger(__name__)

# Inputs of neighbor-word prediction (FiveFine's auxiliary objective), present when featurised with `neighbor_words`.
NWP_KEYS = ("nwp_input_ids", "nwp_attention_mask", "nwp_mention_positions", "nwp_labels")
# Keys the loss needs and prediction must not pass to the model.
TRAINING_ONLY_KEYS = ("labels", "label_weights", *NWP_KEYS)
# The dataset row of each batch row: collated so predictions can be gathered in order, popped before the forward.
INDEX_KEY = "index"


def featurize_mentions(
    batch: dict[str, list],
    indices: list[int],
    encoder: MentionEncoder,
    label2id: dict[str, int],
    neighbor_words: bool = False,
) -> dict[str, list]:
    """`datasets.map(batched=True, with_indices=True)` function: templated ids, mask position, label ids.

    Labels outside `label2id` get no id (restrict the data first, see `mention_data.restrict_to_labels`, so that
    they are counted). With `neighbor_words`, adds the `(Left: [MASK])` / `(Right: [MASK])` inputs of FiveFine's
    neighbor-word prediction and their targets: the encoder must then take `prompt="left"` / `"right"`.
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
    if neighbor_words:
        for side in ("left", "right"):
            side_encoded = encoder.encode_batch(mentions, prompt=side)
            features[f"{side}_input_ids"] = [item.input_ids for item in side_encoded]
            features[f"{side}_position"] = [item.mention_position for item in side_encoded]
            features[f"{side}_target"] = [getattr(item, f"{side}_neighbor_id") for item in encoded]
    return features


def featurize_split(
    dataset: datasets.Dataset,
    accelerator: Accelerator,
    encoder: MentionEncoder,
    label2id: dict[str, int],
    name: str,
    neighbor_words: bool = False,
) -> datasets.Dataset:
    """`featurize_mentions` over a whole split, on the main process first (the others reuse its cache); logs how
    many inputs had to be cut to the template length."""
    with accelerator.main_process_first():
        features = dataset.map(
            featurize_mentions,
            batched=True,
            with_indices=True,
            fn_kwargs={"encoder": encoder, "label2id": label2id, "neighbor_words": neighbor_words},
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
    not already positive weigh `extra_label_weight`, negatives 1. NWP inputs (`NWP_KEYS`), when featurised, are
    built for one side per mention chosen at random (the reference pools both sides and keeps one batch worth),
    drawn from `seed` and the batch's row indices: the data loader collates a batch ahead of training, so the global
    random state at that moment differs between an uninterrupted and a resumed run, while the batch itself does not.
    """

    tokenizer: PreTrainedTokenizerBase
    num_labels: int
    pad_to_multiple_of: int | None = None
    original_label_weight: float | None = None
    extra_label_weight: float = 1.0
    seed: int = 0

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
        if "left_input_ids" in features[0]:
            batch.update(self._neighbor_word_inputs(features))
        return batch

    def _neighbor_word_inputs(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """The `NWP_KEYS` inputs: each mention's left or right neighbor-word prompt, the side drawn per row."""
        generator = torch.Generator().manual_seed(step_seed(self.seed, *(f[INDEX_KEY] for f in features)))
        picks = torch.randint(0, 2, (len(features),), generator=generator).tolist()
        sides = ["left" if pick else "right" for pick in picks]
        padded = self._pad([feature[f"{side}_input_ids"] for feature, side in zip(features, sides)])
        values = (
            padded["input_ids"],
            padded["attention_mask"],
            torch.tensor([feature[f"{side}_position"] for feature, side in zip(features, sides)]),
            torch.tensor([feature[f"{side}_target"] for feature, side in zip(features, sides)]),
        )
        return dict(zip(NWP_KEYS, values))


__all__ = [
    "INDEX_KEY",
    "NWP_KEYS",
    "TRAINING_ONLY_KEYS",
    "DataCollatorForEntityTyping",
    "featurize_mentions",
    "featurize_split",
    "step_seed",
]
