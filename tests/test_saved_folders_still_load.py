"""Folders saved before the package's modules moved into family and stage subpackages still load, with the same
outputs: a `save_pretrained` folder and a Hub export of each family, written by the older code and committed
(`tests/fixtures/write_pre_layout_fixtures.py` says how and `pre_layout/WRITTEN_BY` by which commit)."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, pipeline

import modeling_entity_typing
from modeling_entity_typing import BertForPhraseTypeTyping, EntityTypingPipeline, MBertForContrastiveTyping


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pre_layout"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
CLASSES = {"fivefine": BertForPhraseTypeTyping, "crossc": MBertForContrastiveTyping}


def outputs_of(typer) -> dict:
    logits = []
    with torch.no_grad():
        for mention in REFERENCE["mentions"]:
            inputs = typer.preprocess(mention)
            inputs.pop("meta")
            logits.append(typer.model(**inputs).logits[0].tolist())
    labels = [[item["label"] for item in result["labels"]] for result in typer(REFERENCE["mentions"], threshold=0.0)]
    return {"logits": logits, "labels": labels}


@pytest.mark.parametrize("family", ["fivefine", "crossc"])
@pytest.mark.parametrize("folder", ["model", "export"])
def test_a_folder_saved_before_the_move_loads_with_the_same_outputs(family, folder):
    path = FIXTURES / family / folder
    config = AutoConfig.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    assert type(model) is CLASSES[family] and type(config) is type(model.config)
    assert type(model).__module__.startswith(f"{modeling_entity_typing.__name__}.{family}.")
    by_path = pipeline("entity-typing", model=str(path))  # library mode: no remote code, no flag
    assert type(by_path) is EntityTypingPipeline
    by_model = pipeline("entity-typing", model=model, tokenizer=AutoTokenizer.from_pretrained(path))
    expected = REFERENCE["outputs"][family]
    for typer in (by_path, by_model):
        actual = outputs_of(typer)
        assert actual["labels"] == expected["labels"]
        torch.testing.assert_close(torch.tensor(actual["logits"]), torch.tensor(expected["logits"]))
