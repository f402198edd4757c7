"""Inputs of FiveFine's neighbor-word prediction (NWP, paper section 3.2): the prompts `(Left: [MASK])` and
`(Right: [MASK])` after the mention, each trained to predict the word next to the mention on that side.

`NeighborWordInputs` plugs into the shared featurisation and collator as a `BatchExtension`: it adds both sides'
templated ids to each featurised mention, and builds one side per mention into the `NWP_KEYS` model inputs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..mention_encoding import EncodedMention
from .prompt_template import PromptTemplateEncoder


# Inputs of `BertForPhraseTypeTyping.forward` that carry the NWP term; a batch without them trains without it.
NWP_KEYS = ("nwp_input_ids", "nwp_attention_mask", "nwp_mention_positions", "nwp_labels")
SIDES = ("left", "right")


@dataclass
class NeighborWordInputs:
    """FiveFine's NWP batch extension, built from the same prompt template encoder as the typing input."""

    encoder: PromptTemplateEncoder
    keys: ClassVar[tuple[str, ...]] = NWP_KEYS  # the model's argument names: not a per-instance choice

    def featurize(self, mentions: list[tuple[str, int, int]], encoded: list[EncodedMention]) -> dict[str, list]:
        """Per mention and side: the side prompt's ids, its mask position, and the neighbor word's id as target."""
        columns: dict[str, list] = {}
        for side in SIDES:
            side_encoded = self.encoder.encode_batch(mentions, prompt=side)
            columns[f"{side}_input_ids"] = [item.input_ids for item in side_encoded]
            columns[f"{side}_position"] = [item.mention_position for item in side_encoded]
            columns[f"{side}_target"] = [getattr(item, f"{side}_neighbor_id") for item in encoded]
        return columns

    def collate(
        self,
        features: list[dict],
        pad: Callable[[list[list[int]]], dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """One side per mention, drawn with `generator` (the reference pools both sides and keeps a batch's worth)."""
        picks = torch.randint(0, 2, (len(features),), generator=generator).tolist()
        sides = ["left" if pick else "right" for pick in picks]
        padded = pad([feature[f"{side}_input_ids"] for feature, side in zip(features, sides)])
        values = (
            padded["input_ids"],
            padded["attention_mask"],
            torch.tensor([feature[f"{side}_position"] for feature, side in zip(features, sides)]),
            torch.tensor([feature[f"{side}_target"] for feature, side in zip(features, sides)]),
        )
        return dict(zip(self.keys, values))


__all__ = ["NWP_KEYS", "NeighborWordInputs"]
