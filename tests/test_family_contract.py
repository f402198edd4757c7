"""One suite for every model family: each member of the family contract (`modeling_entity_typing.contract`) behaves
as the pipeline, training, prototypes and the exports rely on it to."""

import ast
import copy
import io
import pickle
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from tiny import MENTIONS, TINY_LABELS, make_tiny_crossc_model, make_tiny_model, make_tiny_tokenizer
from transformers import AutoModel, BertConfig, BertModel, pipeline

import modeling_entity_typing
from modeling_entity_typing import EncodedMention, EntityTypingModel, EntityTypingOutput, type_prototypes
from modeling_entity_typing.contract import EntityTypingConfig, MentionEncoder
from modeling_entity_typing.decision import DECISION_RULES
from modeling_entity_typing.fivefine import NWP_KEYS, NeighborWordInputs
from modeling_entity_typing.modeling_utils import EntityTypingPreTrainedModel
from modeling_entity_typing.prototypes import mention_embeddings
from modeling_entity_typing.training import (
    DataCollatorForEntityTyping,
    featurize_mentions,
    freeze_unused_heads,
    predict_probabilities,
)


FAMILIES = {
    "fivefine": make_tiny_model,
    "fivefine-encoder-space": lambda tokenizer: make_tiny_model(tokenizer, type_space="encoder"),
    "crossc": make_tiny_crossc_model,
}
NEW_LABELS = ["/location/city", "writer", "person"]  # one kept from TINY_LABELS, one new, one moved


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    """`(model, tokenizer)` of a tiny random model of each family, in eval mode."""
    tokenizer = make_tiny_tokenizer()
    return FAMILIES[request.param](tokenizer).eval(), tokenizer


def vector_size(model) -> int:
    """The length of mention and type vectors: the hidden size, plus the score-bias coordinate in FiveFine's encoder
    type space."""
    return model.config.hidden_size + (getattr(model.config, "type_space", "mlm") == "encoder")


def model_inputs(model, tokenizer, mentions=MENTIONS) -> dict[str, torch.Tensor]:
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    padded = tokenizer.pad({"input_ids": [e.input_ids for e in encoded]}, padding_side="right", return_tensors="pt")
    return {**padded, "mention_positions": torch.tensor([e.mention_position for e in encoded])}


def test_model_and_config_implement_the_protocols(family):
    model, _ = family
    assert isinstance(model, EntityTypingPreTrainedModel) and isinstance(model, EntityTypingModel)
    assert isinstance(model.config, EntityTypingConfig)
    assert model.config.decision in DECISION_RULES and 0.0 <= model.config.threshold <= 1.0
    assert isinstance(model.supports_candidate_labels, bool)


def test_label_set_in_and_out(family):
    model, tokenizer = family
    assert model.config.label_list() == TINY_LABELS
    model.set_label_set(NEW_LABELS, tokenizer)
    assert model.config.label_list() == NEW_LABELS
    assert model.config.id2label == dict(enumerate(NEW_LABELS))
    assert model.config.label2id == {label: index for index, label in enumerate(NEW_LABELS)}
    assert model.type_embeddings().shape == (len(NEW_LABELS), vector_size(model))
    # a {label: phrase} mapping is a label set for every family
    model.set_label_set({"city": "city", "author": "writer"}, tokenizer)
    assert model.config.label_list() == ["city", "author"]
    with pytest.raises(ValueError):
        model.set_label_set(["a", "a"], tokenizer)


def test_mention_encoder_gives_one_input_per_mention(family):
    model, tokenizer = family
    encoder = model.get_mention_encoder(tokenizer)
    assert isinstance(encoder, MentionEncoder)
    encoded = encoder.encode_batch(MENTIONS)
    assert len(encoded) == len(MENTIONS) and all(isinstance(item, EncodedMention) for item in encoded)
    assert encoded[0] == encoder.encode(*MENTIONS[0])
    for item in encoded:
        assert len(item.input_ids) <= encoder.max_length and 0 <= item.mention_position < len(item.input_ids)


def test_scores_are_mention_vectors_times_type_vectors(family):
    model, tokenizer = family
    inputs = model_inputs(model, tokenizer)
    with torch.no_grad():
        output = model(**inputs)
        mentions = model.embed_mentions(inputs["input_ids"], inputs["attention_mask"], inputs["mention_positions"])
        types = model.type_embeddings()
    assert isinstance(output, EntityTypingOutput)
    assert output.logits.shape == (len(MENTIONS), len(TINY_LABELS))
    assert mentions.shape == (len(MENTIONS), vector_size(model))
    torch.testing.assert_close(output.mention_embeddings, mentions)
    torch.testing.assert_close(output.logits, mentions @ types.T)
    # targets give a loss
    targets = torch.zeros(len(MENTIONS), len(TINY_LABELS))
    assert model(**inputs, labels=targets).loss.ndim == 0


def test_candidate_labels_follow_the_capability_flag(family):
    model, tokenizer = family
    inputs = model_inputs(model, tokenizer)
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    if model.supports_candidate_labels:
        extra = model.label_set_inputs(NEW_LABELS, tokenizer)
        with torch.no_grad():
            scored = model(**inputs, **extra).logits
        assert scored.shape == (len(MENTIONS), len(NEW_LABELS))
        assert model.config.label_list() == TINY_LABELS  # the configured set is untouched
        result = typer(MENTIONS[0][0], span=MENTIONS[0][1:], candidate_labels=NEW_LABELS, threshold=0.0)
        assert {item["label"] for item in result["labels"]} == set(NEW_LABELS)
    else:
        with pytest.raises(ValueError, match="trained labels"):
            model.label_set_inputs(NEW_LABELS, tokenizer)
        with pytest.raises(ValueError, match="trained labels"):
            typer(MENTIONS[0][0], span=MENTIONS[0][1:], candidate_labels=NEW_LABELS)


def test_head_and_auxiliary_prefixes_name_real_parameters(family):
    model, _ = family
    names = list(dict(model.named_parameters(remove_duplicate=False)))  # tied parameters under each of their names
    assert model.head_parameter_prefixes
    for prefix in model.head_parameter_prefixes:
        assert any(name.startswith(prefix) for name in names), prefix
    assert not any(prefix.startswith("bert.") for prefix in model.head_parameter_prefixes)  # not the encoder
    for term, prefixes in model.auxiliary_parameter_prefixes.items():
        assert prefixes, term
        for prefix in prefixes:
            assert any(name.startswith(prefix) for name in names), (term, prefix)


def test_after_freezing_the_idle_heads_the_typing_loss_reaches_every_trainable_parameter(family):
    """DDP stops at the first step on a trainable parameter that gets no gradient, so fine-tuning (no auxiliary
    term) freezes what only the auxiliary terms train; the typing loss must then reach everything left."""
    model, tokenizer = family
    model.train()
    frozen = freeze_unused_heads(model)
    labels = torch.zeros(len(MENTIONS), model.config.num_labels)
    labels[:, 0] = 1.0
    model(**model_inputs(model, tokenizer), labels=labels).loss.backward()
    idle = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not idle, f"trainable without a gradient: {idle}"
    assert all(not p.requires_grad for name, p in model.named_parameters() if name in frozen)


def test_save_and_load_keep_the_label_set_and_scores(family, tmp_path):
    model, tokenizer = family
    model.set_label_set(NEW_LABELS, tokenizer)
    inputs = model_inputs(model, tokenizer)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model) and loaded.config.label_list() == NEW_LABELS
    assert loaded.config.label2id == model.config.label2id
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)


def _copies(model) -> dict[str, torch.nn.Module]:
    """`model` deep-copied, through pickle, and through `torch.save`/`torch.load` of the whole module."""
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return {
        "deepcopy": copy.deepcopy(model),
        "pickle": pickle.loads(pickle.dumps(model)),
        "torch.save": torch.load(buffer, weights_only=False),
    }


@pytest.mark.parametrize("saved", [False, True], ids=["built", "from_pretrained"])
def test_copies_and_pickles_score_alike_and_are_independent(family, saved, tmp_path):
    """EMA, weight averaging, multiprocessing and `torch.save(model)` copy the module: each copy scores as the
    original and shares nothing with it, and its own weight updates reach its scores even when they bypass the
    version counter (as fused optimizers do) while the type matrix is cached."""
    model, tokenizer = family
    if saved:
        model.save_pretrained(tmp_path)
        model = AutoModel.from_pretrained(tmp_path).eval()
    inputs = model_inputs(model, tokenizer)
    with torch.no_grad():
        expected = model(**inputs).logits  # in eval mode without gradients: cached type vectors are filled
    targets = torch.zeros(len(MENTIONS), model.config.num_labels)
    targets[:, 0] = 1.0
    for how, copied in _copies(model).items():
        assert type(copied) is type(model) and copied.config.label_list() == model.config.label_list(), how
        assert not {id(p) for p in model.parameters()} & {id(p) for p in copied.parameters()}, how
        with torch.no_grad():
            torch.testing.assert_close(copied(**inputs).logits, expected, rtol=0, atol=0, msg=how)
        copied(**inputs, labels=targets).loss.backward()  # still in eval mode, as an EMA update may run
        with torch.no_grad():
            for parameter in copied.parameters():
                if parameter.grad is not None:
                    parameter.data.sub_(parameter.grad.sign())  # through `.data`: no version bump
            assert not torch.allclose(copied(**inputs).logits, expected), f"{how}: a stale type matrix was served"
        torch.testing.assert_close(model(**inputs).logits.detach(), expected, rtol=0, atol=0, msg=how)
        assert all(p.grad is None for p in model.parameters()), how


def test_prototypes_and_the_pipeline_use_only_the_contract(family):
    model, tokenizer = family
    prototypes = type_prototypes(model, tokenizer, {"city": [("Paris is a big city.", "Paris")]})
    assert prototypes["city"].shape == (vector_size(model),)
    typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    result = typer(MENTIONS[0][0], span=MENTIONS[0][1:], top_k=2)
    assert len(result["labels"]) == 2 and {item["label"] for item in result["labels"]} <= set(TINY_LABELS)


def test_mention_embeddings_are_the_models_vectors_at_unit_length_whatever_the_batching(family):
    model, tokenizer = family
    model.train()
    vectors = mention_embeddings(model, tokenizer, MENTIONS, batch_size=2)
    assert model.training, "the caller's training mode is restored"
    assert vectors.shape == (len(MENTIONS), vector_size(model))
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(len(MENTIONS)))
    torch.testing.assert_close(mention_embeddings(model, tokenizer, MENTIONS, batch_size=len(MENTIONS)), vectors)
    model.eval()
    with torch.no_grad():
        direct = model.embed_mentions(**model_inputs(model, tokenizer))
    torch.testing.assert_close(vectors, torch.nn.functional.normalize(direct, dim=-1))


def test_the_pipeline_refuses_a_model_outside_the_contract():
    tokenizer = make_tiny_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=8, num_hidden_layers=1, num_attention_heads=2)
    with pytest.raises(TypeError, match="family contract"):
        pipeline("entity-typing", model=BertModel(config), tokenizer=tokenizer)


def test_each_family_overrides_every_contract_method(family):
    model, _ = family
    # `embed_mentions` is the base's shared encoder pass; a family supplies where and how the vector is read
    for name in ("set_label_set", "get_mention_encoder", "default_mention_positions", "mention_vectors",
                 "type_embeddings", "from_encoder"):  # fmt: skip
        assert getattr(type(model), name) is not getattr(EntityTypingPreTrainedModel, name), name
    assert (type(model).label_set_inputs is EntityTypingPreTrainedModel.label_set_inputs) == (
        not model.supports_candidate_labels
    )


def _code_strings_and_imports(path: Path) -> tuple[list[str], list[str]]:
    """String constants that are not docstrings, and the modules imported, of one source file."""
    tree = ast.parse(path.read_text())
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, scopes) and node.body and isinstance(node.body[0], ast.Expr)
    }
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    imports = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    return strings, imports


def test_shared_training_code_names_no_family_input():
    """FiveFine's neighbor-word inputs reach the shared featuriser and collator through a `BatchExtension` only."""
    training = Path(modeling_entity_typing.__file__).parent / "training"
    for path in sorted(training.glob("*.py")):
        strings, imports = _code_strings_and_imports(path)
        assert not [s for s in strings if "nwp" in s.lower() or "neighbor" in s.lower()], path.name
        assert not [m for m in imports if m.split(".")[-1] in ("fivefine", "crossc") or "fivefine" in m], path.name


def test_neighbor_words_extension_adds_its_inputs_and_prediction_ignores_them():
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer).eval()
    encoder = model.get_mention_encoder(tokenizer)
    records = {
        "text": [m[0] for m in MENTIONS],
        "start": [m[1] for m in MENTIONS],
        "end": [m[2] for m in MENTIONS],
        "labels": [[TINY_LABELS[0]]] * len(MENTIONS),
    }
    label2id = model.config.label2id
    extension = NeighborWordInputs(encoder)
    columns = featurize_mentions(records, list(range(len(MENTIONS))), encoder, label2id, extension)
    rows = [{key: values[row] for key, values in columns.items()} for row in range(len(MENTIONS))]
    collate = DataCollatorForEntityTyping(tokenizer, len(label2id), seed=3, extension=extension)
    batch = collate(rows)
    assert set(NWP_KEYS) <= set(batch) and batch["nwp_labels"].shape == (len(MENTIONS),)
    assert torch.equal(collate(rows)["nwp_input_ids"], batch["nwp_input_ids"])  # the side draw is the batch's own
    plain = DataCollatorForEntityTyping(tokenizer, len(label2id))(rows)
    assert not set(NWP_KEYS) & set(plain)
    loader = Accelerator(cpu=True).prepare(torch.utils.data.DataLoader(rows, batch_size=2, collate_fn=collate))
    with_nwp = predict_probabilities(model, loader, Accelerator(cpu=True))
    loader = torch.utils.data.DataLoader(
        rows, batch_size=2, collate_fn=DataCollatorForEntityTyping(tokenizer, len(label2id))
    )
    assert torch.allclose(with_nwp, predict_probabilities(model, loader, Accelerator(cpu=True)))


# Of `torch.nn.Module` shared code may use what every model has: modes, parameters, device, the call.
_MODULE_MEMBERS = {"train", "eval", "training", "parameters", "named_parameters", "device", "config"}
_CONTRACT_MEMBERS = {
    name for name in (*vars(EntityTypingModel), *EntityTypingModel.__annotations__) if not name.startswith("_")
}


class _ContractOnly:
    """A model seen through the family contract only: reading any other attribute fails, as in shared code it must."""

    def __init__(self, model):
        object.__setattr__(self, "_model", model)

    def __getattr__(self, name: str):
        if name not in _CONTRACT_MEMBERS | _MODULE_MEMBERS:
            raise AttributeError(f"shared code read `{name}` of a model, which is not a member of the family contract")
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        return self._model(*args, **kwargs)


def test_the_contract_guard_refuses_a_family_s_own_buffers():
    guarded = _ContractOnly(make_tiny_model(make_tiny_tokenizer()))
    with pytest.raises(AttributeError, match="`type_phrase_ids` of a model, which is not a member"):
        guarded.type_phrase_ids  # noqa: B018 - the read itself is the test


@pytest.mark.parametrize("num_processes", [1, 2])
def test_the_type_bank_and_type_sampling_read_only_the_contract(num_processes):
    """Shared training code drives FiveFine's encoder type space (the family that scores subsets of its types)
    through the contract alone: a family's private buffers are not reachable from it."""
    from modeling_entity_typing.training import TypeBank, sample_type_columns

    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer, type_space="encoder").train()
    assert model.supports_type_subsets
    guarded = _ContractOnly(model)
    batch = {**model_inputs(model, tokenizer), "labels": torch.eye(len(MENTIONS), len(TINY_LABELS))}
    torch.manual_seed(0)
    sampled = sample_type_columns(batch, guarded, num_negatives=1)
    assert guarded(**sampled).loss.ndim == 0
    # two processes, simulated: this one's shard, gathered with an equal stand-in for the other's
    gather = None if num_processes == 1 else (lambda shard: torch.cat([shard, shard]))
    bank = TypeBank(refresh_steps=1, fresh_negatives=1, num_processes=num_processes, gather=gather)
    banked = bank.batch_inputs(batch, guarded, step=0)
    assert bank.matrix.shape == (len(TINY_LABELS), vector_size(model))
    assert guarded(**banked).loss.ndim == 0
    assert "cls.predictions.bias" in freeze_unused_heads(guarded)


def test_families_without_type_subsets_say_so(family):
    model, _ = family
    if model.supports_type_subsets:
        assert set(model.type_subset_inputs(torch.tensor([0]))) <= set(model.label_set_inputs(["a"], family[1]))
    else:
        with pytest.raises(ValueError, match="scores its whole label set at once"):
            model.type_subset_inputs(torch.tensor([0]))
