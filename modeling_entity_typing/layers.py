"""Small building blocks shared by the model families (composition, not inheritance)."""

import torch


def gather_positions(hidden_states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Pick one vector per sequence: `(batch, seq, dim)` at `(batch,)` positions -> `(batch, dim)`."""
    batch_index = torch.arange(hidden_states.size(0), device=hidden_states.device)
    return hidden_states[batch_index, positions]


def first_token_positions(input_ids: torch.Tensor, token_id: int, token_name: str) -> torch.Tensor:
    """Position of the first `token_id` in each row; a clear error when a row has none."""
    is_token = input_ids == token_id
    missing = (~is_token.any(dim=1)).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"Rows {missing[:10]} of `input_ids` contain no {token_name} token (id {token_id}). Build inputs with the "
            "model's template (`model.get_mention_encoder(tokenizer)`) or pass `mention_positions` explicitly."
        )
    return is_token.int().argmax(dim=1)


def dot_product_scores(mention_embeddings: torch.Tensor, type_embeddings: torch.Tensor) -> torch.Tensor:
    """Bias-free scores `(batch, dim) x (num_types, dim) -> (batch, num_types)`."""
    return mention_embeddings @ type_embeddings.T


def check_fresh_rows(rows: torch.Tensor | None, phrase_ids: torch.Tensor | None) -> None:
    """A bank's fresh `rows` come with one phrase each, before anything is encoded."""
    if rows is not None and (phrase_ids is None or len(phrase_ids) != len(rows)):
        raise ValueError(
            f"`type_bank_rows` names {len(rows)} rows; pass their phrases as `type_phrase_ids` (got "
            f"{None if phrase_ids is None else len(phrase_ids)})."
        )


def with_fresh_rows(
    bank: torch.Tensor, rows: torch.Tensor | None, fresh: torch.Tensor | None, row_scale: torch.Tensor | None = None
) -> torch.Tensor:
    """`bank` (no gradient) with `rows` replaced by `fresh`, which carries gradients, multiplied by `row_scale` `(k,)`
    on the way back (the values unchanged): a training bank of vectors with a few of them computed now."""
    bank = bank.detach()
    if rows is None:
        return bank
    fresh = fresh.to(bank.dtype)
    if row_scale is not None:
        scale = row_scale.to(fresh.dtype)[:, None]
        fresh = fresh.detach() + scale * (fresh - fresh.detach())
    return bank.index_copy(0, rows, fresh)


__all__ = ["dot_product_scores", "first_token_positions", "check_fresh_rows", "gather_positions", "with_fresh_rows"]
