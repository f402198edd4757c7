"""`TypePhraseEncoder.encode_phrases` (each distinct word piece projected once, the query folded into the key weight,
padding skipped) equals the per-position formula in values and in every gradient, with dropout off and on."""

import math

import pytest
import torch
import torch.nn.functional as F

from modeling_entity_typing.label_sets import pad_phrase_token_ids


def reference_type_vectors(encoder, embedding_matrix, token_ids, token_mask):
    """The direct computation: every position's key and value projected on its own, then masked multi-head pooling."""
    embeddings = embedding_matrix[token_ids]  # (types, len, hidden)
    num_types, length, _ = embeddings.shape
    heads, size = encoder.num_heads, encoder.head_size
    keys = F.linear(embeddings, encoder.key.weight, encoder.key.bias).view(num_types, length, heads, size)
    values = F.linear(embeddings, encoder.value.weight, encoder.value.bias).view(num_types, length, heads, size)
    query = encoder.query.view(heads, size) + encoder.head_offset
    scores = torch.einsum("tlhd,hd->thl", keys, query) / math.sqrt(size)
    scores = scores.masked_fill(~token_mask[:, None, :], torch.finfo(scores.dtype).min)
    weights = encoder.dropout(scores.softmax(dim=-1))  # the module's dropout: same probability, same RNG stream
    out = F.linear(torch.einsum("thl,tlhd->thd", weights, values).reshape(num_types, -1), *encoder.output.parameters())
    return encoder.layer_norm(out + out)


PHRASES = [
    "city",
    "the city",  # "city" again, in another phrase and position
    "sports team",
    "team of the sports team",  # pieces repeated within a phrase; the longest phrase sets the padding
    "big city town",
    "writer",  # word pieces
    "author",
]


def _phrases(tokenizer):
    token_ids = [tokenizer.encode(phrase, add_special_tokens=False) for phrase in PHRASES]
    ids, mask = pad_phrase_token_ids(token_ids, tokenizer.pad_token_id)
    # A masked position holding a real piece (the mask, not the id, decides what is padding) and a row with no
    # unmasked token (uniform weights over its padding, as the direct formula gives).
    ids[0, 1] = ids[2, 0]
    ids = torch.cat([ids, torch.full_like(ids[:1], tokenizer.pad_token_id)])
    mask = torch.cat([mask, torch.zeros_like(mask[:1])])
    assert (~mask).any(dim=1).sum() >= 5  # padding in most rows
    assert torch.unique(ids[mask]).numel() < mask.sum()  # pieces shared across and within phrases
    return ids, mask


def _randomise(model):
    """Random weights everywhere the type vectors depend on: fresh weights give uniform attention (zero keys) and an
    identity value map, which would hide a wrong key or value path."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.get_output_embeddings().weight.normal_()
        for name, parameter in model.type_encoder.named_parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3 + (1.0 if name == "layer_norm.weight" else 0.0))


def _values_and_gradients(model, compute, upstream, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)
    vectors = compute()
    (vectors * upstream).sum().backward()
    gradients = {name: p.grad.clone() for name, p in model.type_encoder.named_parameters()}
    gradients["word_embeddings"] = model.get_output_embeddings().weight.grad.clone()
    return vectors.detach(), gradients


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train-dropout"])
def test_fast_path_equals_the_direct_formula_in_values_and_gradients(
    tiny_model, tiny_tokenizer, dtype, tolerance, training
):
    model = tiny_model.to(dtype).train(training)
    _randomise(model)
    ids, mask = _phrases(tiny_tokenizer)
    upstream = torch.randn(len(ids), model.config.hidden_size, dtype=dtype)
    embedding_matrix = model.get_output_embeddings().weight
    assert embedding_matrix is model.bert.embeddings.word_embeddings.weight  # tied: gradients reach the encoder too
    fast, fast_grads = _values_and_gradients(model, lambda: model.encode_types(ids, mask), upstream)
    direct, direct_grads = _values_and_gradients(
        model, lambda: reference_type_vectors(model.type_encoder, embedding_matrix, ids, mask), upstream
    )
    torch.testing.assert_close(fast, direct, rtol=tolerance, atol=tolerance)
    assert fast_grads.keys() == direct_grads.keys()
    for name, grad in direct_grads.items():
        assert grad.abs().sum() > 0, name  # every parameter takes part, so each comparison has teeth
        torch.testing.assert_close(fast_grads[name], grad, rtol=tolerance, atol=tolerance, msg=name)
    # The module's own per-position `forward` is the same computation.
    torch.manual_seed(0)
    module_forward = model.type_encoder(embedding_matrix[ids], mask)
    torch.testing.assert_close(module_forward.detach(), direct, rtol=tolerance, atol=tolerance)
    if training:
        # Dropout did act (the seeded comparison above is not an eval comparison in disguise) ...
        with torch.no_grad():
            assert not torch.allclose(model.eval().encode_types(ids, mask), fast, atol=1e-3)
        # ... and another seed draws another mask, in both paths alike.
        other, _ = _values_and_gradients(model.train(), lambda: model.encode_types(ids, mask), upstream, seed=1)
        assert not torch.allclose(other, fast, atol=1e-3)


def test_fast_path_on_the_configured_label_set_and_in_chunks(tiny_model):
    """The model's own label set, through `type_embeddings` (the eval cache encodes in chunks, each deduplicated
    on its own), equals the direct formula."""
    model = tiny_model.eval()
    _randomise(model)
    ids, mask = model.type_phrase_ids, model.type_phrase_mask
    with torch.no_grad():
        direct = reference_type_vectors(model.type_encoder, model.get_output_embeddings().weight, ids, mask)
        torch.testing.assert_close(model.type_embeddings(), direct, rtol=2e-5, atol=2e-5)
        halves = torch.cat([model.encode_types(ids[:2], mask[:2]), model.encode_types(ids[2:], mask[2:])])
        torch.testing.assert_close(halves, direct, rtol=2e-5, atol=2e-5)
        assert model.encode_types(ids[:0], mask[:0]).shape == (0, model.config.hidden_size)
