import copy
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from tiny import MENTIONS, TINY_LABELS, encode_batch, get_tiny_fivefine_config, make_tiny_model
from transformers import AutoModel, BertForMaskedLM, BertModel

from modeling_entity_typing import BertForPhraseTypeTyping, EntityTypingOutput, FiveFineConfig


def test_output_shapes(tiny_model, tiny_tokenizer):
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    output = tiny_model(**inputs)
    assert isinstance(output, EntityTypingOutput)
    assert output.logits.shape == (3, len(TINY_LABELS))
    assert output.mention_embeddings.shape == (3, 32)
    assert output.loss is None and output.type_loss is None


def test_mention_position_defaults_to_first_mask(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    explicit = tiny_model(**inputs).logits
    del inputs["mention_positions"]
    assert torch.allclose(tiny_model(**inputs).logits, explicit)
    with pytest.raises(ValueError, match=r"Rows \[0\] of `input_ids` contain no mask token"):
        tiny_model(input_ids=torch.tensor([[2, 10, 3]]))


def _training_batch(model, tokenizer):
    inputs = encode_batch(model, tokenizer, MENTIONS)
    labels = torch.tensor([[1.0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    mlm_labels = torch.full_like(inputs["input_ids"], -100)
    mlm_labels[:, 1] = inputs["input_ids"][:, 1]  # first context/bracket token as MLM target
    nwp = encode_batch(model, tokenizer, MENTIONS)  # same shape is enough for the loss plumbing
    return {
        **inputs,
        "labels": labels,
        "mlm_labels": mlm_labels,
        "nwp_input_ids": nwp["input_ids"],
        "nwp_attention_mask": nwp["attention_mask"],
        "nwp_mention_positions": nwp["mention_positions"],
        "nwp_labels": torch.tensor([10, 11, 12]),
    }


def test_loss_is_finite_and_gradients_reach_type_encoder_and_word_embeddings(tiny_model, tiny_tokenizer):
    output = tiny_model(**_training_batch(tiny_model, tiny_tokenizer))
    for term in (output.loss, output.type_loss, output.mlm_loss, output.nwp_loss):
        assert term is not None and torch.isfinite(term)
    expected = output.type_loss + 0.1 * output.mlm_loss + 0.1 * output.nwp_loss
    assert torch.allclose(output.loss, expected)
    output.loss.backward()
    type_encoder = dict(tiny_model.type_encoder.named_parameters())
    for name in ("key.weight", "value.weight", "output.weight"):
        assert type_encoder[name].grad is not None and type_encoder[name].grad.abs().sum() > 0, name
    # The fresh pool has zero keys (uniform attention), so the query's gradient (the keys) is zero until the keys
    # have moved once; after one step it learns too.
    assert type_encoder["query"].grad.abs().sum() == 0
    torch.optim.SGD([type_encoder["key.weight"]], lr=1.0).step()
    tiny_model.zero_grad()
    tiny_model(**_training_batch(tiny_model, tiny_tokenizer)).loss.backward()
    for name in ("query", "head_offset"):
        assert type_encoder[name].grad.abs().sum() > 0, name
    # Word embeddings get gradient through the type phrases: the rows of phrase tokens.
    embedding_grad = tiny_model.bert.embeddings.word_embeddings.weight.grad
    phrase_token = tiny_model.type_phrase_ids[0, 0]
    assert embedding_grad[phrase_token].abs().sum() > 0
    assert tiny_model.nwp_head.predictions.decoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("switch_off", ["type", "mlm", "nwp"])
def test_each_loss_term_can_be_switched_off(tiny_tokenizer, switch_off):
    overrides = {"mlm": {"mlm_loss_weight": 0.0}, "nwp": {"nwp_loss_weight": 0.0}}.get(switch_off, {})
    model = make_tiny_model(tiny_tokenizer, **overrides)
    batch = _training_batch(model, tiny_tokenizer)
    if switch_off == "type":
        del batch["labels"]
    output = model(**batch)
    terms = {"type": output.type_loss, "mlm": output.mlm_loss, "nwp": output.nwp_loss}
    assert terms.pop(switch_off) is None
    assert all(term is not None for term in terms.values())
    weights = {"type": 1.0, "mlm": 0.1, "nwp": 0.1}
    assert torch.allclose(output.loss, sum(weights[name] * term for name, term in terms.items()))
    if switch_off == "nwp":
        assert model.nwp_head is None  # no unused module (DDP would complain about it)


def test_weighted_bce_is_mean_of_weighted_terms(tiny_model, tiny_tokenizer):
    batch = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    labels = torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    weights = torch.where(labels > 0, torch.tensor(5.0), torch.tensor(1.0))
    weights[0, 4] = 1.0  # an "extra" (prompt) label
    output = tiny_model(**batch, labels=labels, label_weights=weights)
    logits = output.logits
    per_example = [
        sum(
            weights[i, t]
            * -(labels[i, t] * F.logsigmoid(logits[i, t]) + (1 - labels[i, t]) * F.logsigmoid(-logits[i, t]))
            for t in range(logits.size(1))
        )
        / logits.size(1)
        for i in range(logits.size(0))
    ]
    assert torch.allclose(output.type_loss, torch.stack(per_example).mean(), atol=1e-6)


def test_typing_slot_is_never_an_mlm_target(tiny_model, tiny_tokenizer):
    batch = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    only_slot = torch.full_like(batch["input_ids"], -100)
    only_slot[torch.arange(3), batch["mention_positions"]] = batch["input_ids"][
        torch.arange(3), batch["mention_positions"]
    ]
    output = tiny_model(**batch, mlm_labels=only_slot)
    assert output.mlm_loss == 0  # nothing left to predict once the slot is excluded


def test_type_encoder_matches_a_per_type_computation(tiny_model):
    """The batched pooler equals the reference formula computed type by type and head by head."""
    encoder = tiny_model.type_encoder.eval()
    with torch.no_grad():
        encoder.head_offset.normal_()
        embeddings = torch.randn(3, 4, 32)
        mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
        batched = encoder(embeddings, mask)
        heads, size = encoder.num_heads, encoder.head_size
        for t in range(3):
            x = embeddings[t, mask[t]]  # (len, 32)
            keys, values = encoder.key(x), encoder.value(x)
            pooled = []
            for h in range(heads):
                q = encoder.query[0, h * size : (h + 1) * size] + encoder.head_offset[h]
                alpha = torch.softmax(keys[:, h * size : (h + 1) * size] @ q / math.sqrt(size), dim=0)
                pooled.append(alpha @ values[:, h * size : (h + 1) * size])
            out = encoder.output(torch.cat(pooled))
            expected = encoder.layer_norm(out + out)
            assert torch.allclose(batched[t], expected, atol=1e-5)


def test_type_token_embeddings_are_the_tied_mlm_output_weights(tiny_model):
    decoder = tiny_model.cls.predictions.decoder.weight
    assert decoder is tiny_model.bert.embeddings.word_embeddings.weight
    assert tiny_model.nwp_head.predictions.decoder.weight is not decoder  # NWP head is untied


def test_scores_are_bias_free_dot_products(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    with torch.no_grad():
        output = tiny_model(**encode_batch(tiny_model, tiny_tokenizer, MENTIONS))
        types = tiny_model.encode_types(tiny_model.type_phrase_ids, tiny_model.type_phrase_mask)
        assert torch.allclose(output.logits, output.mention_embeddings @ types.T, atol=1e-5)


# --------------------------------------------------------------------------------------------------------- label sets
def test_set_label_set_changes_scores_not_weights(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    weights_before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    tiny_model.set_label_set({"writer": "writer author", "town": "town"}, tiny_tokenizer)
    with torch.no_grad():
        logits = tiny_model(**inputs).logits
    assert logits.shape == (3, 2)
    assert tiny_model.config.id2label == {0: "writer", 1: "town"}
    assert tiny_model.config.label_phrases == ["writer author", "town"]
    after = tiny_model.state_dict()
    assert weights_before.keys() == after.keys()
    assert all(torch.equal(weights_before[k], after[k]) for k in after)


def test_default_phrases_and_phrase_ids_follow_the_labels(tiny_model, tiny_tokenizer):
    assert tiny_model.config.label_phrases == ["person", "city", "company", "sports team", "time"]
    sports_team = tiny_tokenizer("sports team", add_special_tokens=False)["input_ids"]
    assert tiny_model.type_phrase_ids[3, :2].tolist() == sports_team
    assert tiny_model.type_phrase_mask[3].tolist() == [True, True]
    assert tiny_model.type_phrase_mask[0].tolist() == [True, False]


def test_forward_with_explicit_label_set_equals_adopting_it(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    with torch.no_grad():
        explicit = tiny_model(**inputs, **tiny_model.label_set_inputs(["town", "writer"], tiny_tokenizer)).logits
        tiny_model.set_label_set(["town", "writer"], tiny_tokenizer)
        adopted = tiny_model(**inputs).logits
    assert torch.allclose(explicit, adopted)


def test_model_without_label_set_says_how_to_set_one():
    model = BertForPhraseTypeTyping(get_tiny_fivefine_config())
    with pytest.raises(ValueError, match=r"no label set yet: call `model.set_label_set\(labels, tokenizer\)`"):
        model(input_ids=torch.tensor([[2, 4, 3]]))


# ------------------------------------------------------------------------------------------------------ type cache
def _type_matrix(model, **kwargs):
    with torch.no_grad():
        return model.type_embeddings(**kwargs)


def test_type_matrix_is_cached_in_eval_mode(tiny_model, tiny_tokenizer, monkeypatch):
    tiny_model.eval()
    calls = []
    original = tiny_model.encode_types
    monkeypatch.setattr(tiny_model, "encode_types", lambda *a: calls.append(1) or original(*a))
    first = _type_matrix(tiny_model)
    assert _type_matrix(tiny_model) is first
    town = tiny_model.label_set_inputs(["town"], tiny_tokenizer)
    ids, mask = town["type_phrase_ids"], town["type_phrase_mask"]
    other = _type_matrix(tiny_model, **town)
    assert _type_matrix(tiny_model, type_phrase_ids=ids.clone(), type_phrase_mask=mask.clone()) is other
    assert len(calls) == 2


def test_cache_invalidated_when_label_set_changes(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    first = _type_matrix(tiny_model)
    tiny_model.set_label_set(["town", "writer"], tiny_tokenizer)
    second = _type_matrix(tiny_model)
    assert second.shape == (2, 32) and second is not first


@pytest.mark.parametrize("fused", [False, True], ids=["default-adamw", "fused-adamw"])
@pytest.mark.parametrize("switch_modes", [True, False], ids=["train-then-eval", "stays-in-eval"])
def test_cache_invalidated_by_an_optimizer_step(tiny_model, tiny_tokenizer, fused, switch_modes):
    # The fused kernel writes weights without bumping `_version`: a key on version counters alone served stale
    # type vectors after every step. Training in eval mode (dropout off) must not be served stale vectors either.
    batch = _training_batch(tiny_model, tiny_tokenizer)
    tiny_model.eval()
    before = _type_matrix(tiny_model).clone()
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-2, fused=fused)
    if switch_modes:
        tiny_model.train()
    tiny_model(**batch).loss.backward()
    optimizer.step()
    tiny_model.eval()
    after = _type_matrix(tiny_model)
    fresh = tiny_model.encode_types(tiny_model.type_phrase_ids, tiny_model.type_phrase_mask)
    assert not torch.allclose(before, after)
    assert torch.equal(after, fresh.detach())


def test_fused_adamw_leaves_version_counters_alone():
    # Why the cache cannot rely on `_version`: if a torch release makes the fused step bump it, this test says so.
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=0.1, fused=True)
    weight.sum().backward()
    version = weight._version
    optimizer.step()
    assert not torch.equal(weight.detach(), torch.ones(3))
    assert weight._version == version


def test_cache_invalidated_by_load_state_dict(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    before = _type_matrix(tiny_model).clone()
    other = make_tiny_model(tiny_tokenizer)
    with torch.no_grad():
        for parameter in other.type_encoder.parameters():
            parameter.add_(0.5)
    tiny_model.load_state_dict(other.state_dict())
    after = _type_matrix(tiny_model)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, _type_matrix(other.eval()))


def test_eval_mode_with_gradients_is_not_cached_and_differentiable(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    _type_matrix(tiny_model)  # fill the cache
    logits = tiny_model(**encode_batch(tiny_model, tiny_tokenizer, MENTIONS)).logits
    logits.sum().backward()
    assert tiny_model.type_encoder.key.weight.grad is not None


# -------------------------------------------------------------------------------------------------- save and load
def test_save_load_roundtrip_logits_equal(tiny_model, tiny_tokenizer, tmp_path):
    tiny_model.eval()
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is BertForPhraseTypeTyping
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, tiny_model(**inputs).logits)


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_fresh_process_automodel_gives_same_class_and_logits(tiny_model, tiny_tokenizer, tmp_path):
    tiny_model.eval()
    inputs = encode_batch(tiny_model, tiny_tokenizer, MENTIONS)
    tiny_model.save_pretrained(tmp_path / "model")
    torch.save(inputs, tmp_path / "inputs.pt")  # our own file, written by this test
    script = (
        "import sys, json, torch, modeling_entity_typing\n"
        "from transformers import AutoModel\n"
        f"model = AutoModel.from_pretrained({str(tmp_path / 'model')!r}).eval()\n"
        f"inputs = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        "with torch.no_grad(): logits = model(**inputs).logits\n"
        "print(json.dumps({'cls': type(model).__module__ + '.' + type(model).__name__, 'logits': logits.tolist()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True)
    reported = json.loads(result.stdout.strip().splitlines()[-1])
    assert reported["cls"] == "modeling_entity_typing.fivefine.modeling_fivefine.BertForPhraseTypeTyping"
    with torch.no_grad():
        expected = tiny_model(**inputs).logits
    assert torch.equal(torch.tensor(reported["logits"]), expected)


# -------------------------------------------------------------------------------------------------- from_encoder
def _save_encoder(tmp_path, tiny_tokenizer, with_mlm_head: bool):
    config = get_tiny_fivefine_config()
    bert_config = copy.deepcopy(config).to_dict()
    from transformers import BertConfig

    bert_config = BertConfig(**{k: v for k, v in bert_config.items() if k in BertConfig().to_dict()})
    torch.manual_seed(1)
    encoder = BertForMaskedLM(bert_config) if with_mlm_head else BertModel(bert_config)
    encoder.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    return encoder


def test_from_encoder_loads_the_mlm_head_when_present(tmp_path, tiny_tokenizer, caplog):
    encoder = _save_encoder(tmp_path, tiny_tokenizer, with_mlm_head=True)
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(tmp_path, TINY_LABELS, max_seq_length=32)
    transform = model.cls.predictions.transform.dense.weight
    assert torch.equal(transform, encoder.cls.predictions.transform.dense.weight)
    assert torch.equal(model.nwp_head.predictions.transform.dense.weight, transform)
    assert torch.equal(
        model.bert.encoder.layer[0].attention.self.query.weight,
        encoder.bert.encoder.layer[0].attention.self.query.weight,
    )
    assert model.config.mask_token_id == tokenizer.mask_token_id
    assert "has no MLM head" not in caplog.text


def test_from_encoder_without_mlm_head_says_so_and_saves(tmp_path, tiny_tokenizer, caplog):
    _save_encoder(tmp_path / "encoder", tiny_tokenizer, with_mlm_head=False)
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(
        tmp_path / "encoder", {"city": "city town"}, save_directory=tmp_path / "out", max_seq_length=32
    )
    assert (
        "has no MLM head: the head (whose transform gives FiveFine's mention vector) starts from random" in caplog.text
    )
    assert model.config.label_phrases == ["city town"]
    assert (tmp_path / "out" / "model.safetensors").exists() and (tmp_path / "out" / "tokenizer.json").exists()
    assert isinstance(AutoModel.from_pretrained(tmp_path / "out"), BertForPhraseTypeTyping)


def test_from_encoder_rejects_a_saved_typing_model(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"is a .fivefine. checkpoint; `BertForPhraseTypeTyping.from_encoder` takes"):
        BertForPhraseTypeTyping.from_encoder(tmp_path, TINY_LABELS)


def test_config_class_is_registered():
    assert BertForPhraseTypeTyping.config_class is FiveFineConfig


# ------------------------------------------------------------------------------------------------ MLM corruption
def test_corruption_never_touches_the_typing_slot_and_follows_the_reference_split(tiny_model, tiny_tokenizer):
    from modeling_entity_typing import corrupt_for_mlm

    batch = encode_batch(tiny_model, tiny_tokenizer, MENTIONS * 200)
    input_ids, positions = batch["input_ids"], batch["mention_positions"]
    generator = torch.Generator().manual_seed(0)
    corrupted, mlm_labels = corrupt_for_mlm(input_ids, tiny_tokenizer, 0.3, generator=generator)
    rows = torch.arange(input_ids.size(0))
    assert (mlm_labels[rows, positions] == -100).all()
    assert (corrupted[rows, positions] == tiny_tokenizer.mask_token_id).all()
    special = torch.isin(input_ids, torch.tensor(tiny_tokenizer.all_special_ids))
    assert (mlm_labels[special] == -100).all() and torch.equal(corrupted[special], input_ids[special])
    targets = mlm_labels != -100
    assert torch.equal(mlm_labels[targets], input_ids[targets])
    assert abs(targets.sum() / (~special).sum() - 0.3) < 0.02
    masked = (corrupted[targets] == tiny_tokenizer.mask_token_id).float().mean()
    unchanged = (corrupted[targets] == input_ids[targets]).float().mean()
    assert abs(masked - 0.8) < 0.03 and abs(unchanged - 0.18) < 0.03  # the rest, ~2%, random tokens
    again, _ = corrupt_for_mlm(input_ids, tiny_tokenizer, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, corrupted)  # seeded: reproducible
    output = tiny_model(
        input_ids=corrupted, attention_mask=batch["attention_mask"], mention_positions=positions, mlm_labels=mlm_labels
    )
    assert output.mlm_loss > 0 and torch.isfinite(output.mlm_loss)


def test_activation_checkpointing_gives_the_same_loss_and_gradients(tiny_model, tiny_tokenizer):
    batch = _training_batch(tiny_model, tiny_tokenizer)
    tiny_model.train()
    torch.manual_seed(0)
    loss = tiny_model(**batch).loss
    loss.backward()
    grad = tiny_model.type_encoder.key.weight.grad.clone()
    tiny_model.zero_grad()
    tiny_model.activation_checkpointing_enable()
    torch.manual_seed(0)
    checkpointed = tiny_model(**batch).loss
    checkpointed.backward()
    assert torch.allclose(loss, checkpointed) and torch.allclose(grad, tiny_model.type_encoder.key.weight.grad)


def test_fresh_type_vector_is_the_normalised_mean_of_its_word_embeddings(tiny_model):
    # FiveFine's prior (a type is its words) must hold before any training, or zero-shot typing is random.
    tiny_model.eval()
    embeddings = tiny_model.get_output_embeddings().weight[tiny_model.type_phrase_ids]
    mask = tiny_model.type_phrase_mask[..., None].float()
    mean = (embeddings * mask).sum(1) / mask.sum(1)
    expected = torch.nn.functional.layer_norm(mean, mean.shape[-1:], eps=tiny_model.type_encoder.layer_norm.eps)
    torch.testing.assert_close(_type_matrix(tiny_model), expected / mean.shape[-1] ** 0.5)  # gain 1/sqrt(hidden)


def test_type_cache_is_thread_safe_under_eviction(tiny_model, tiny_tokenizer):
    """8 threads cycling through more label sets than a cache of 2 holds: every lookup, insert and eviction races
    with the others, and each call must still return its own label set's matrix."""
    import sys
    import threading
    import time
    from collections import OrderedDict

    class YieldingCache(OrderedDict):
        """Hands the GIL to another thread around every access, widening the windows a race needs."""

        def get(self, key, default=None):
            value = super().get(key, default)
            time.sleep(0)
            return value

        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            time.sleep(0)

        def popitem(self, last=True):
            time.sleep(0)
            return super().popitem(last=last)

        def move_to_end(self, key, last=True):
            time.sleep(0)
            return super().move_to_end(key, last=last)

    tiny_model.eval()
    tiny_model.phrase_types.cache.size = 2
    tiny_model.phrase_types.cache._entries = YieldingCache()
    words = ["city", "town", "person", "writer", "author", "company", "team", "music", "artist", "time"]
    label_sets = [
        tuple(tiny_model.label_set_inputs(words[i : i + 3], tiny_tokenizer).values()) for i in range(0, 8, 2)
    ]
    with torch.no_grad():
        expected = [tiny_model.encode_types(ids, mask) for ids, mask in label_sets]
    errors, wrong = [], []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        try:
            start.wait()
            for step in range(400):
                index = (offset + step * (offset + 1)) % len(label_sets)
                matrix = _type_matrix(tiny_model, type_phrase_ids=label_sets[index][0].clone())
                if not torch.allclose(matrix, expected[index], atol=1e-6):
                    wrong.append(index)
        except Exception as error:  # noqa: BLE001 - reported below with its type
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so the races happen
    try:
        threads = [threading.Thread(target=work, args=(offset,)) for offset in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, [f"{type(error).__name__}: {error}" for error in errors[:3]]
    assert not wrong
    assert len(tiny_model.phrase_types.cache) <= 2


def test_hand_edited_label_phrases_are_rejected_not_silently_ignored(tiny_model, tiny_tokenizer, tmp_path):
    """The stored token ids used to win over an edited phrase: the model kept scoring the old one."""
    from huggingface_hub.errors import StrictDataclassClassValidationError

    tiny_model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    assert saved["label_phrases"][1] == "city"
    edited = {**saved, "label_phrases": [*saved["label_phrases"][:1], "town", *saved["label_phrases"][2:]]}
    config_file.write_text(json.dumps(edited))
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=r"disagree for 1 label\(s\), first '/location/city' \(id 1\): its phrase is 'town' but its token ids "
        r"\[\d+\] were tokenized from another phrase.*remove `label_phrase_token_ids` and `label_phrase_checksums`",
    ):
        AutoModel.from_pretrained(tmp_path)
    swapped_ids = {
        **saved,
        "label_phrase_token_ids": [saved["label_phrase_token_ids"][2], *saved["label_phrase_token_ids"][1:]],
    }
    config_file.write_text(json.dumps(swapped_ids))
    with pytest.raises(StrictDataclassClassValidationError, match=r"first 'person' \(id 0\): its phrase is 'person'"):
        AutoModel.from_pretrained(tmp_path)

    # The fix the message gives: drop the stale ids, load, re-tokenize the edited phrases.
    config_file.write_text(
        json.dumps({k: v for k, v in edited.items() if k not in ("label_phrase_token_ids", "label_phrase_checksums")})
    )
    model = AutoModel.from_pretrained(tmp_path).eval()
    with pytest.raises(ValueError, match=r"names label phrases but holds no `label_phrase_token_ids`.*set_label_set"):
        model(**encode_batch(model, tiny_tokenizer, MENTIONS))
    model.set_label_set(list(model.config.id2label.values()), tiny_tokenizer, model.config.label_phrases)
    assert model.type_phrase_ids[1, 0] == tiny_tokenizer.convert_tokens_to_ids("town")
    model.save_pretrained(tmp_path / "fixed")
    assert AutoModel.from_pretrained(tmp_path / "fixed").config.label_phrases[1] == "town"
