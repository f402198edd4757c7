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


__all__ = ["dot_product_scores", "first_token_positions", "gather_positions"]
