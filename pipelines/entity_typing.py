"""`pipeline("entity-typing")`: type a mention, given by a character span or its string, in a text."""

import types
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset
from transformers import Pipeline


try:
    import datasets
except ImportError:  # pragma: no cover - `datasets` is a dependency; keep the pipeline importable without it
    datasets = None

from ..configuration import DECISION_RULES
from ..decision import decide
from ..label_sets import LabelSet


OPTIONS = ("threshold", "top_k", "decision", "candidate_labels")


def resolve_span(text: Any, span: Any) -> tuple[int, int]:
    """Validate `text` and `span`; return `(start, end)`, or raise a `TypeError`/`ValueError` saying how to fix it."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string, got {type(text).__name__}.")
    if span is None:
        raise TypeError(
            'No mention given: pass `span=(start, end)` (character offsets, end exclusive) or `span="..."`.'
        )
    if isinstance(span, str):
        if not span.strip():
            raise ValueError("The mention string `span` is empty or whitespace; give the words to type.")
        start = text.find(span)
        if start < 0:
            raise ValueError(f"The mention {span!r} does not occur in the text; pass character offsets instead.")
        return start, start + len(span)
    if (
        not isinstance(span, (tuple, list))
        or len(span) != 2
        or not all(isinstance(x, Integral) and not isinstance(x, bool) for x in span)
    ):
        raise TypeError(f"`span` must be (start, end) character offsets or the mention string, got {span!r}.")
    start, end = int(span[0]), int(span[1])
    if not 0 <= start <= len(text) or not 0 <= end <= len(text):
        raise ValueError(f"`span` {(start, end)} is out of range for a text of {len(text)} characters.")
    if start > end:
        raise ValueError(f"`span` {(start, end)} is reversed: start must come before end (end is exclusive).")
    if start == end:
        raise ValueError(f"`span` {(start, end)} is empty: end is exclusive, so (start, start + length).")
    if not text[start:end].strip():
        raise ValueError(f"`span` {(start, end)} covers only whitespace ({text[start:end]!r}); point it at a word.")
    return start, end


def check_options(threshold, top_k, decision) -> None:
    if threshold is not None and (
        not isinstance(threshold, Real) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(f"`threshold` is a probability in [0, 1], got {threshold!r}.")
    if top_k is not None and (not isinstance(top_k, Integral) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"`top_k` must be a positive integer or None (no cap), got {top_k!r}.")
    if decision is not None and decision not in DECISION_RULES:
        raise ValueError(f"`decision` must be one of {DECISION_RULES}, got {decision!r}.")


class _Rows(TorchDataset):
    """A `datasets.Dataset` seen as a torch `Dataset` of row dicts, so the pipeline batches it lazily."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[index]


def _as_pipeline_input(inputs: Any) -> Any:
    """Route any iterable of mentions to the base pipeline's streaming paths (it knows lists, torch datasets and
    generators; a `datasets.Dataset` is none of those, and a tuple would be taken for one input)."""
    if isinstance(inputs, (Mapping, list, TorchDataset, types.GeneratorType)):
        return inputs
    if datasets is not None and isinstance(inputs, datasets.Dataset):
        return _Rows(inputs)
    if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes)):
        return (item for item in inputs)
    return inputs


class EntityTypingPipeline(Pipeline):
    """Types entity mentions with any model of this package.

    ```python
    >>> typer = pipeline("entity-typing", model="path/to/fivefine")
    >>> typer("Mark Twain wrote Tom Sawyer.", span=(0, 10))
    {'mention': 'Mark Twain', 'span': (0, 10), 'labels': [{'label': 'person', 'score': 0.97}, ...], 'truncated': False,
     'mention_truncated': False}
    >>> typer([{"text": t, "span": s} for t, s in items], batch_size=32, candidate_labels=["writer", "city"])
    ```

    Inputs: a text with `span=(start, end)` (character offsets, end exclusive) or `span="Mark Twain"` (the first
    occurrence is used), or dicts `{"text", "span"}` in a list (a list comes back), or in a generator, a
    `datasets.Dataset`, a dataset column or any other iterable (results stream back lazily).
    Options: `threshold` (default `config.threshold`), `top_k` (cap on returned labels), `decision` (`"threshold"`
    or `"argmax_with_ancestors"`, default `config.decision`), and `candidate_labels` (a list, or `{label: phrase}`)
    to type against a new label set with no fine-tuning (phrase-typing models only).
    Output per mention: the labels as `{"label", "score"}` by descending score, the mention and span, and whether the
    context (`truncated`) or the mention itself (`mention_truncated`) had to be cut to fit the model.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mention_encoder = self.model.get_mention_encoder(self.tokenizer)
        self._phrase_inputs: dict[LabelSet, tuple[torch.Tensor, torch.Tensor]] = {}
        self._configured_labels: tuple[Any, list[str]] = (None, [])

    def __call__(self, inputs, span=None, **kwargs):
        if isinstance(inputs, str):
            inputs = {"text": inputs, "span": span}
        elif span is not None:
            raise TypeError(
                "`span=` goes with a single text. For many mentions pass dicts: [{'text': ..., 'span': ...}, ...]."
            )
        return super().__call__(_as_pipeline_input(inputs), **kwargs)

    def _sanitize_parameters(self, threshold=None, top_k=None, decision=None, candidate_labels=None, **unknown):
        if unknown:
            raise TypeError(
                f"Unknown option(s) {sorted(unknown)}; the entity-typing pipeline takes {OPTIONS} and the usual "
                "`batch_size` / `num_workers`."
            )
        check_options(threshold, top_k, decision)
        forward_params, postprocess_params = {}, {}
        if candidate_labels is not None:
            if not hasattr(self.model, "encode_label_set"):
                raise ValueError(f"{type(self.model).__name__} types against its trained labels only.")
            if isinstance(candidate_labels, str):
                raise TypeError("`candidate_labels` must be a list of labels or a {label: phrase} dict, not a string.")
            label_set = LabelSet.create(candidate_labels)
            forward_params["label_set"] = postprocess_params["label_set"] = label_set
        for name, value in (("threshold", threshold), ("top_k", top_k), ("decision", decision)):
            if value is not None:
                postprocess_params[name] = value
        return {}, forward_params, postprocess_params

    def preprocess(self, inputs) -> dict[str, Any]:
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "Each input must be a text with `span=`, or a dict {'text': ..., 'span': ...}; "
                f"got {type(inputs).__name__}."
            )
        if "text" not in inputs:
            raise TypeError(f"An input dict needs the keys 'text' and 'span'; got {sorted(inputs)}.")
        text = inputs["text"]
        start, end = resolve_span(text, inputs.get("span"))
        encoded = self.mention_encoder.encode(text, start, end)
        return {
            "input_ids": torch.tensor([encoded.input_ids]),
            "attention_mask": torch.ones(1, len(encoded.input_ids), dtype=torch.long),
            "mention_positions": torch.tensor([encoded.mention_position]),
            "meta": {
                "mention": text[start:end],
                "span": (start, end),
                "truncated": encoded.truncated,
                "mention_truncated": encoded.mention_truncated,
            },
        }

    def _forward(self, model_inputs: dict[str, Any], label_set: LabelSet | None = None) -> dict[str, Any]:
        meta = model_inputs.pop("meta")
        if label_set is not None:
            if label_set not in self._phrase_inputs:
                self._phrase_inputs[label_set] = self.model.encode_label_set(label_set, self.tokenizer)
            model_inputs["type_phrase_ids"], model_inputs["type_phrase_mask"] = self._phrase_inputs[label_set]
        return {"logits": self.model(**model_inputs).logits, "meta": meta}

    def _labels_of_config(self) -> list[str]:
        # Keyed on the dict object itself (held, so its id cannot be reused): `set_label_set` assigns a new one.
        id2label = self.model.config.id2label
        if self._configured_labels[0] is not id2label:
            self._configured_labels = (id2label, [id2label[index] for index in range(len(id2label))])
        return self._configured_labels[1]

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        threshold: float | None = None,
        top_k: int | None = None,
        decision: str | None = None,
        label_set: LabelSet | None = None,
    ) -> dict[str, Any]:
        config = self.model.config
        labels = label_set.labels if label_set is not None else self._labels_of_config()
        probabilities = model_outputs["logits"][0].float().sigmoid()
        predicted = decide(
            probabilities,
            labels,
            decision=decision or config.decision,
            threshold=config.threshold if threshold is None else threshold,
            top_k=top_k,
        )
        return {**model_outputs["meta"], "labels": predicted}


__all__ = ["EntityTypingPipeline", "check_options", "resolve_span"]
