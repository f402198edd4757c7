"""Tiny, offline building blocks for tests: a WordPiece tokenizer and a random BERT-sized-down FiveFine model."""

import string

import torch
from transformers import BertTokenizer

from modeling_entity_typing import BertForPhraseTypeTyping, FiveFineConfig


WORDS = (
    "[ ] ( ) : . , ' type left right the a is in of and wrote mark twain paris city person company town writer author "
    "sports team time artist music location organization big nice 東 京"
).split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + WORDS + list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase + string.digits]
TINY_LABELS = ["person", "/location/city", "/organization/company", "/organization/sports_team", "time"]


def make_tiny_tokenizer() -> BertTokenizer:
    """An uncased WordPiece tokenizer over ~110 tokens: every ASCII word tokenises, other scripts become [UNK]."""
    tokenizer = BertTokenizer(vocab={token: index for index, token in enumerate(VOCAB)})
    tokenizer.model_max_length = 64
    return tokenizer


def get_tiny_fivefine_config(**overrides) -> FiveFineConfig:
    fields = dict(
        vocab_size=len(VOCAB) + 3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        max_seq_length=32,
        type_attention_heads=4,
        pad_token_id=0,
        mask_token_id=4,
    )
    fields.update(overrides)
    return FiveFineConfig(**fields)


def make_tiny_model(tokenizer, labels=TINY_LABELS, **overrides) -> BertForPhraseTypeTyping:
    torch.manual_seed(0)
    model = BertForPhraseTypeTyping(get_tiny_fivefine_config(**overrides))
    model.set_label_set(labels, tokenizer)
    return model


def encode_batch(model, tokenizer, mentions):
    """Pad templated mentions `(text, start, end)` into model inputs."""
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    length = max(len(e.input_ids) for e in encoded)
    input_ids = torch.zeros(len(encoded), length, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, e in enumerate(encoded):
        input_ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        attention_mask[row, : len(e.input_ids)] = 1
    positions = torch.tensor([e.mention_position for e in encoded])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "mention_positions": positions}


MENTIONS = [
    ("Mark Twain wrote in Paris.", 0, 10),
    ("Paris is a big city.", 0, 5),
    ("The sports team of Paris is nice, and big.", 4, 15),
]


def write_mentions(path, rows) -> str:
    """Write `(text, mention, labels)` rows as this package's JSON-lines mention format; returns the path."""
    import json

    with open(path, "w", encoding="utf-8") as handle:
        for text, mention, labels in rows:
            start = text.index(mention)
            record = {"text": text, "start": start, "end": start + len(mention), "labels": labels}
            handle.write(json.dumps(record) + "\n")
    return str(path)


FET_ROWS = [
    (f"{name} {verb} in {place} .", name, labels)
    for name, labels in [
        ("mark twain", ["/person", "/person/author"]),
        ("paris", ["/location", "/location/city"]),
        ("big company", ["/organization", "/organization/company"]),
        ("sports team", ["/organization", "/organization/sports_team"]),
    ]
    for verb in ("is", "wrote")
    for place in ("the city", "a town")
]


def make_tiny_crossc_model(tokenizer, labels=TINY_LABELS, **overrides):
    """A random 2-layer Cross-C model whose `tokenizer` (modified in place) gains the `[ENT]` marker."""
    from modeling_entity_typing import CrossCConfig, MBertForContrastiveTyping

    fields = get_tiny_fivefine_config().to_dict()
    for key in ("model_type", "architectures", "transformers_version", "label_phrases", "label_phrase_token_ids"):
        fields.pop(key, None)
    for key in list(fields):
        if key not in CrossCConfig.__dataclass_fields__ and key not in ("id2label", "label2id"):
            fields.pop(key)
    fields.update(id2label=dict(enumerate(labels)), label2id=None, **overrides)
    torch.manual_seed(0)
    model = MBertForContrastiveTyping(CrossCConfig(**fields))
    model.add_marker(tokenizer)
    return model
