"""`sample_type_columns`: a batch's target types plus sampled negatives, consistent across labels and phrases."""

import torch

from modeling_entity_typing.training import sample_type_columns


class _TenPhrases:
    """The one contract member the sampling reads: `type_subset_inputs` of a model with phrases 100..109."""

    device = torch.device("cpu")

    def __init__(self, num_types: int = 10):
        self.ids = torch.arange(num_types).view(num_types, 1) + 100

    def type_subset_inputs(self, rows):
        return {"type_phrase_ids": self.ids[rows], "type_phrase_mask": torch.ones(len(rows), 1, dtype=torch.bool)}


def test_targets_kept_negatives_sampled_and_columns_aligned():
    labels = torch.zeros(2, 10)
    labels[0, 3] = labels[1, 7] = 1
    weights = torch.arange(20.0).view(2, 10)
    model = _TenPhrases()
    torch.manual_seed(0)
    sampled = sample_type_columns({"labels": labels, "label_weights": weights}, model, 3)
    kept = (sampled["type_phrase_ids"][:, 0] - 100).tolist()
    assert len(kept) == 5 and {3, 7} <= set(kept) and kept == sorted(kept)
    assert torch.equal(sampled["labels"], labels[:, kept])
    assert torch.equal(sampled["label_weights"], weights[:, kept])
    assert sampled["type_phrase_mask"].shape == (5, 1)
    # the draw follows the global generator (seeded per batch by the training loop), so a resumed run repeats it
    torch.manual_seed(0)
    again = sample_type_columns({"labels": labels, "label_weights": weights}, model, 3)
    assert torch.equal(again["type_phrase_ids"], sampled["type_phrase_ids"])


def test_more_negatives_than_types_keeps_everything():
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    sampled = sample_type_columns({"labels": labels}, _TenPhrases(3), 10)
    assert torch.equal(sampled["labels"], labels) and "label_weights" not in sampled
