"""Fitting an MLM head for an encoder that has none: the fit learns, the folder is a standard checkpoint, the cache
is reused, and FiveFine built on it reads the fitted head."""

import itertools
import json

import pytest
import torch
from tiny import get_tiny_fivefine_config
from transformers import BertConfig, BertModel

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.fivefine import mlm_head as mlm_head_module
from modeling_entity_typing.fivefine.mlm_head import (
    REPORT_FILE,
    build_encoder_with_mlm_head,
    cached_encoder_with_mlm_head,
    fit_mlm_head,
    has_mlm_head,
    read_sentences,
)


NAMES = ["mark twain", "the writer", "a person", "the author"]
PLACES = ["paris", "the city", "a town", "the big city"]
SENTENCES = [f"{name} wrote in {place} ." for name, place in itertools.product(NAMES, PLACES)] + [
    f"{place} is big and nice ." for place in PLACES
]


@pytest.fixture
def plain_encoder(tmp_path, tiny_tokenizer):
    """A tiny BERT saved without any MLM head, as sentence-embedding checkpoints are."""
    fields = {
        key: value for key, value in get_tiny_fivefine_config().to_dict().items() if key in BertConfig().to_dict()
    }
    torch.manual_seed(0)
    path = tmp_path / "plain-bert"
    BertModel(BertConfig(**fields), add_pooling_layer=False).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


def test_fit_raises_heldout_masked_token_accuracy(tiny_model, tiny_tokenizer):
    before = {name: p.detach().clone() for name, p in tiny_model.bert.named_parameters()}
    report = fit_mlm_head(tiny_model, tiny_tokenizer, SENTENCES * 4, epochs=30, maskings=8, learning_rate=1e-2, seed=1)
    assert report.heldout_positions > 0 and report.train_positions > report.heldout_positions
    assert report.heldout_accuracy_before < 0.1  # a random head over a 110-token vocabulary
    assert report.heldout_accuracy_after > report.heldout_accuracy_before + 0.25
    for name, parameter in tiny_model.bert.named_parameters():  # the encoder is frozen, and left trainable
        assert torch.equal(parameter, before[name]), name
        assert parameter.requires_grad
    # The decoder stays tied to the word embeddings (so type phrases live where the head predicts).
    assert tiny_model.cls.predictions.decoder.weight is tiny_model.bert.embeddings.word_embeddings.weight


def test_fit_needs_sentences(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="at least 2 distinct non-empty sentences"):
        fit_mlm_head(tiny_model, tiny_tokenizer, ["same", "same", " "])


def test_built_folder_is_a_standard_checkpoint_that_fivefine_loads(plain_encoder, tmp_path):
    assert not has_mlm_head(plain_encoder)
    output = tmp_path / "with-head"
    report = build_encoder_with_mlm_head(plain_encoder, SENTENCES, output, epochs=2)
    assert has_mlm_head(output)
    saved = json.loads((output / REPORT_FILE).read_text())
    assert saved["heldout_accuracy_after"] == report.heldout_accuracy_after and saved["encoder"] == plain_encoder
    model, _ = BertForPhraseTypeTyping.from_encoder(output, ["city", "person"], max_seq_length=32)
    from safetensors.torch import load_file

    weights = load_file(output / "model.safetensors")
    torch.testing.assert_close(
        model.cls.predictions.transform.dense.weight, weights["cls.predictions.transform.dense.weight"]
    )
    with pytest.raises(FileExistsError, match="never overwritten"):
        build_encoder_with_mlm_head(plain_encoder, SENTENCES, output)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".with-head-")]  # no staging left


def test_cache_builds_once_per_encoder_and_corpus(plain_encoder, tmp_path, monkeypatch):
    first = cached_encoder_with_mlm_head(plain_encoder, SENTENCES, tmp_path / "cache", epochs=1)
    assert (first / REPORT_FILE).is_file()

    def no_refit(*args, **kwargs):
        raise AssertionError("a cached head was fitted again")

    monkeypatch.setattr(mlm_head_module, "build_encoder_with_mlm_head", no_refit)
    assert cached_encoder_with_mlm_head(plain_encoder, SENTENCES, tmp_path / "cache", epochs=1) == first
    with pytest.raises(AssertionError, match="fitted again"):  # another corpus is another head
        cached_encoder_with_mlm_head(plain_encoder, SENTENCES[:5], tmp_path / "cache", epochs=1)


def test_read_sentences_from_text_and_mention_files(tmp_path):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("first line\n\nsecond line\nfirst line\n")
    mentions = tmp_path / "m.jsonl"
    mentions.write_text(json.dumps({"text": "Paris is big.", "start": 0, "end": 5, "labels": ["city"]}) + "\n")
    assert read_sentences([text_file, mentions]) == ["first line", "second line", "Paris is big."]
