"""`sample_type_columns`: a batch's target types plus sampled negatives, consistent across labels and phrases."""

import torch

from modeling_entity_typing.training import sample_type_columns


def test_targets_kept_negatives_sampled_and_columns_aligned():
    labels = torch.zeros(2, 10)
    labels[0, 3] = labels[1, 7] = 1
    weights = torch.arange(20.0).view(2, 10)
    phrase_ids = torch.arange(10).view(10, 1) + 100
    phrase_mask = torch.ones(10, 1, dtype=torch.bool)
    torch.manual_seed(0)
    sampled = sample_type_columns({"labels": labels, "label_weights": weights}, phrase_ids, phrase_mask, 3)
    kept = (sampled["type_phrase_ids"][:, 0] - 100).tolist()
    assert len(kept) == 5 and {3, 7} <= set(kept) and kept == sorted(kept)
    assert torch.equal(sampled["labels"], labels[:, kept])
    assert torch.equal(sampled["label_weights"], weights[:, kept])
    assert sampled["type_phrase_mask"].shape == (5, 1)
    # the draw follows the global generator (seeded per batch by the training loop), so a resumed run repeats it
    torch.manual_seed(0)
    again = sample_type_columns({"labels": labels, "label_weights": weights}, phrase_ids, phrase_mask, 3)
    assert torch.equal(again["type_phrase_ids"], sampled["type_phrase_ids"])


def test_more_negatives_than_types_keeps_everything():
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    sampled = sample_type_columns({"labels": labels}, torch.ones(3, 2, dtype=torch.long), torch.ones(3, 2), 10)
    assert torch.equal(sampled["labels"], labels) and "label_weights" not in sampled
