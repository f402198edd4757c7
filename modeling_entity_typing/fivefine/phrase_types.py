"""A FiveFine model's type vectors: phrases (configured or given for one call) read by its type space, with label
examples mixed in, and kept in a `TypeMatrixCache` in eval mode so that inference encodes a label set once."""

from collections.abc import Callable

import torch
from transformers import PreTrainedTokenizerBase

from ..label_examples import LabelExamples, label_examples_unsupported, parse_label_examples
from ..label_sets import LabelSet, pad_phrase_token_ids
from ..layers import check_fresh_rows, with_fresh_rows
from .example_mixing import ExampleVectors, content_key, mean_example_directions, merge_examples, mix_examples, rows_of
from .type_cache import TypeMatrixCache


_CHUNK_SIZE = 1024  # types encoded at once when filling the cache


class PhraseTypes:
    """Reads type vectors for one model (passed in, never held: the model holds this part)."""

    def __init__(self, cache_size: int = 4):
        self.cache = TypeMatrixCache(cache_size)

    @staticmethod
    def buffers(
        config, like: torch.Tensor | None = None, example_vectors: torch.Tensor | None = None
    ) -> dict[str, tuple[torch.Tensor | None, bool]]:
        """The model's label-set buffers and whether each is persistent: the configured phrases' padded token ids
        and mask (not persistent: the config holds them, so checkpoints of different label sets share one layout),
        and each example label's mean example vector (persistent: it cannot be recomputed from the config; zeros
        until loaded, `None` without examples); on the device, and the vectors in the dtype, of `like`."""
        if config.label_phrase_token_ids:
            ids, mask = pad_phrase_token_ids(config.label_phrase_token_ids, config.pad_token_id or 0)
        else:
            ids, mask = torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.bool)
        if config.label_example_labels and example_vectors is None:
            example_vectors = torch.zeros(len(config.label_example_labels), config.hidden_size)
        if like is not None:
            ids, mask = ids.to(like.device), mask.to(like.device)
            example_vectors = None if example_vectors is None else example_vectors.to(like.device, like.dtype)
        return {
            "type_phrase_ids": (ids, False),
            "type_phrase_mask": (mask, False),
            "label_example_vectors": (example_vectors, True),
        }

    def vectors(
        self,
        model,
        phrase_ids: torch.Tensor | None,
        phrase_mask: torch.Tensor | None,
        given: ExampleVectors | None,
    ) -> torch.Tensor:
        """Type vectors of the given phrases, or of the configured label set with its stored examples, with the
        `given` examples mixed in; cached in eval mode without gradients."""
        if given is not None and not model.supports_label_examples:
            raise label_examples_unsupported(model)
        given_key = content_key(given)
        if phrase_ids is None:
            phrase_ids, phrase_mask = self._configured_phrases(model)
            stored = model.label_example_vectors
            # The configured phrases change only through `set_label_set`, which clears the cache, so they need no
            # key of their own (hashing 10,331 phrases on every batch would be work on the hot path); stored
            # examples also change by loading weights, which bumps their version.
            phrases_key = ("configured", None if stored is None else (id(stored), stored._version))
            given = merge_examples(self._stored_examples(model), given)
        else:
            if phrase_mask is None:
                phrase_mask = phrase_ids != (model.config.pad_token_id or 0)
            # A content key: equal label sets hit the cache whichever tensor objects carry them.
            hashes = tuple(hash(t.cpu().numpy().tobytes()) for t in (phrase_ids, phrase_mask.bool()))
            phrases_key = ("given", hashes, tuple(phrase_ids.shape))
        weight = model.config.label_example_weight
        if model.training or torch.is_grad_enabled():
            return mix_examples(model.encode_types(phrase_ids, phrase_mask), given, weight)
        key = ("types", phrases_key, given_key, weight)

        def encode() -> torch.Tensor:
            # In chunks: without a graph to keep, peak memory stays flat however large the label set.
            chunks = zip(phrase_ids.split(_CHUNK_SIZE), phrase_mask.split(_CHUNK_SIZE))
            return mix_examples(torch.cat([model.encode_types(ids, mask) for ids, mask in chunks]), given, weight)

        return self.cached(model, key, encode)

    def with_bank(
        self,
        model,
        bank: torch.Tensor,
        rows: torch.Tensor | None,
        row_scale: torch.Tensor | None,
        phrase_ids: torch.Tensor | None,
        phrase_mask: torch.Tensor | None,
        example_rows: torch.Tensor | None,
    ) -> torch.Tensor:
        """A training bank of the configured types (`training.TypeBank`) with `rows` encoded now from the given
        phrases, whose gradient is multiplied by `row_scale`."""
        if example_rows is not None:
            raise ValueError("A `type_bank` holds finished type vectors: label examples cannot be mixed into it.")
        check_fresh_rows(rows, phrase_ids)
        fresh = None if rows is None else self.vectors(model, phrase_ids, phrase_mask, None)
        return with_fresh_rows(bank, rows, fresh, row_scale)

    def example_inputs(
        self,
        model,
        examples: LabelExamples | dict,
        tokenizer: PreTrainedTokenizerBase,
        labels: LabelSet | list | dict | None,
    ) -> dict[str, torch.Tensor]:
        """`label_example_inputs`: the rows of `labels` (by default the configured set) that `examples` name, and the
        mean unit vector of each one's examples, cached with the type matrices."""
        if not model.supports_label_examples:
            raise label_examples_unsupported(model)
        if labels is None:
            label_list, where = model.config.label_list(), "the model's label set"
            hint = " (to type against other labels, pass them as `labels`, or the pipeline's `candidate_labels`)"
        else:
            label_set = labels if isinstance(labels, LabelSet) else LabelSet.create(labels)
            label_list, where, hint = list(label_set.labels), "the label set given", ""
        if isinstance(examples, LabelExamples):
            examples.check_labels(label_list, where, hint)
        else:
            examples = parse_label_examples(examples, label_list, tokenizer, where, hint)
        rows = rows_of(examples.labels, {label: row for row, label in enumerate(label_list)}, model.device)
        directions = self.cached(
            model, ("examples", examples), lambda: mean_example_directions(model, tokenizer, examples)
        )
        return {"type_example_rows": rows, "type_example_vectors": directions.to(model.device)}

    def cached(self, model, key: tuple, encode: Callable[[], torch.Tensor]) -> torch.Tensor:
        """`encode()`'s result, kept while the weights the type space reads are unchanged."""
        return self.cache.get_or_encode(key, model.type_space.type_weights(model), encode)

    @staticmethod
    def _configured_phrases(model) -> tuple[torch.Tensor, torch.Tensor]:
        if model.type_phrase_ids.size(0) == 0:
            if model.config.label_phrases:
                raise ValueError(
                    "This model's config names label phrases but holds no `label_phrase_token_ids`: tokenize them "
                    "with `model.set_label_set(list(model.config.id2label.values()), tokenizer, "
                    "model.config.label_phrases)`."
                )
            raise ValueError(
                "This model has no label set yet: call `model.set_label_set(labels, tokenizer)` or pass "
                "`type_phrase_ids` and `type_phrase_mask` (`model.label_set_inputs(labels, tokenizer)`)."
            )
        return model.type_phrase_ids, model.type_phrase_mask

    @staticmethod
    def _stored_examples(model) -> ExampleVectors | None:
        if model.label_example_vectors is None:
            return None
        rows = rows_of(tuple(model.config.label_example_labels), model.config.label2id, model.device)
        return ExampleVectors(rows, model.label_example_vectors)


__all__ = ["PhraseTypes"]
