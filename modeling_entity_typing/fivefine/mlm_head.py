"""Fit a masked-LM head for an encoder that ships without one (sentence-embedding BERTs such as all-MiniLM-L6-v2).

FiveFine reads a type as the word a masked LM predicts at `(Type: [MASK])`: its mention vector is the MLM head's
transform at the mask, scored against the (tied) word embeddings. Without a trained head that prior does not exist.
The encoder stays frozen, so its hidden states at masked positions are computed once and cached; the head (transform
+ output bias; the decoder weight is the frozen, tied word-embedding matrix) is then fitted for a few epochs on the
cache. Minutes on a CPU, not hours.

>>> report = fit_mlm_head(model, tokenizer, sentences)   # model: anything with `.bert` and a BERT `.cls` MLM head
>>> report.heldout_accuracy_before, report.heldout_accuracy_after
"""

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, BertForMaskedLM, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from ..data.mention_data import load_mentions
from ..mention_encoding import tokenize_texts


logger = logging.getLogger(__name__)

TARGET_POSITIONS = 10_000  # masked positions a fit aims for (small corpora are masked several times)
MAX_MASKINGS = 8


@dataclass
class MLMHeadFitReport:
    """What the fit saw and achieved; held-out accuracy is top-1 on masked tokens of sentences it never trained on."""

    sentences: int
    heldout_sentences: int
    train_positions: int
    heldout_positions: int
    epochs: int
    heldout_accuracy_before: float
    heldout_accuracy_after: float
    encode_seconds: float
    fit_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _mask_positions(
    input_ids: list[int], special: list[int], probability: float, generator: torch.Generator
) -> list[int]:
    """Positions of ordinary tokens chosen as targets, at least one per sentence that has any."""
    candidates = [position for position, flag in enumerate(special) if not flag]
    if not candidates:
        return []
    chosen = [position for position in candidates if torch.rand((), generator=generator).item() < probability]
    if not chosen:
        chosen = [candidates[int(torch.randint(len(candidates), (), generator=generator))]]
    return chosen


@torch.no_grad()
def _encode_masked(
    encoder: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    maskings: int | None,
    probability: float,
    max_length: int,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final hidden states at masked positions `(positions, hidden)` and the original token ids `(positions,)`.

    Every chosen token is replaced by the mask token (not BERT's 80/10/10): the head is only ever read at a mask,
    the typing slot and the neighbor-word slots. `maskings=None` masks each sentence as often as it takes to reach
    about `TARGET_POSITIONS` targets (at most `MAX_MASKINGS` times): a small corpus is reused, a large one is not.

    Sentences read as `<cls> text <sep>` (cut to `max_length`) with the tokenizer's own start and end tokens, and
    text that spells a special token stays text (`tokenize_texts`), so no sentence brings its own mask.
    """
    body = max_length - 2
    input_ids = [
        [tokenizer.cls_token_id, *ids[:body], tokenizer.sep_token_id] for ids in tokenize_texts(tokenizer, sentences)
    ]
    special_masks = [[1, *[0] * (len(ids) - 2), 1] for ids in input_ids]
    if maskings is None:
        expected = probability * sum(len(flags) - sum(flags) for flags in special_masks)
        maskings = min(MAX_MASKINGS, max(1, math.ceil(TARGET_POSITIONS / max(expected, 1.0))))
    rows = []
    for ids, special in zip(input_ids, special_masks):
        for _ in range(maskings):
            positions = _mask_positions(ids, special, probability, generator)
            if positions:
                rows.append((ids, positions))
    rows.sort(key=lambda row: len(row[0]))  # similar lengths per batch: less padding
    device = next(encoder.parameters()).device
    states, targets = [], []
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin : begin + batch_size]
        masked = []
        for ids, positions in batch:
            ids = list(ids)
            for position in positions:
                ids[position] = tokenizer.mask_token_id
            masked.append(ids)
        padded = tokenizer.pad({"input_ids": masked}, return_tensors="pt").to(device)
        hidden = encoder(**padded).last_hidden_state
        for row, (ids, positions) in enumerate(batch):
            states.append(hidden[row, positions].float().cpu())
            targets.append(torch.tensor([ids[position] for position in positions]))
    if not states:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(states), torch.cat(targets)


def _accuracy(head: nn.Module, states: torch.Tensor, targets: torch.Tensor, batch_size: int) -> float:
    if len(targets) == 0:
        return float("nan")
    was_training = head.training
    head.eval()
    with torch.no_grad():
        hits = sum(
            int((head(chunk).argmax(-1) == gold).sum())
            for chunk, gold in zip(states.split(batch_size), targets.split(batch_size))
        )
    head.train(was_training)
    return hits / len(targets)


def fit_mlm_head(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Iterable[str],
    *,
    epochs: int = 8,
    learning_rate: float = 1e-2,
    mlm_probability: float = 0.15,
    maskings: int | None = None,
    heldout_fraction: float = 0.1,
    max_length: int = 128,
    encode_batch_size: int = 64,
    fit_batch_size: int = 256,
    seed: int = 0,
) -> MLMHeadFitReport:
    """Fit `model.cls` (a BERT MLM head) on unlabelled `sentences`, with `model.bert` frozen; in place.

    Each sentence is masked `maskings` times (`mlm_probability` of its tokens, at least one; default: as often as
    it takes to reach about 10,000 targets, at most 8 times); a `heldout_fraction`
    of the sentences is kept out to measure top-1 masked-token accuracy before and after. The decoder weight stays
    tied to the (frozen) word embeddings, so FiveFine's type phrases keep the embedding space the head predicts in.
    """
    sentences = [text for text in dict.fromkeys(sentences) if text and text.strip()]
    if len(sentences) < 2:
        raise ValueError(f"Fitting an MLM head needs at least 2 distinct non-empty sentences, got {len(sentences)}.")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"`heldout_fraction` must be in (0, 1), got {heldout_fraction}.")
    if tokenizer.mask_token_id is None:
        raise ValueError("The tokenizer has no mask token; an MLM head needs one.")
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(
            "The tokenizer has no start or end token (`cls_token`, `sep_token`); the templates need both."
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(sentences), generator=generator).tolist()
    num_heldout = max(1, round(heldout_fraction * len(sentences)))
    heldout = [sentences[index] for index in order[:num_heldout]]
    train = [sentences[index] for index in order[num_heldout:]]

    encoder, head = model.bert, model.cls
    encoder_was_training = encoder.training
    encoder.eval()
    started = time.perf_counter()
    options = dict(probability=mlm_probability, max_length=max_length, batch_size=encode_batch_size)
    train_states, train_targets = _encode_masked(encoder, tokenizer, train, maskings, generator=generator, **options)
    heldout_states, heldout_targets = _encode_masked(encoder, tokenizer, heldout, 1, generator=generator, **options)
    encoder.train(encoder_was_training)
    encode_seconds = time.perf_counter() - started
    logger.info(
        f"MLM head fit: cached {len(train_targets)} masked positions from {len(train)} sentences "
        f"({len(heldout_targets)} held out from {len(heldout)}) in {encode_seconds:.1f} s"
    )

    device = next(head.parameters()).device
    train_states, train_targets = train_states.to(device), train_targets.to(device)
    heldout_states, heldout_targets = heldout_states.to(device), heldout_targets.to(device)
    decoder_weight = head.predictions.decoder.weight
    trainable = [parameter for parameter in head.parameters() if parameter is not decoder_weight]
    requires_grad = {id(parameter): parameter.requires_grad for parameter in head.parameters()}
    for parameter in head.parameters():
        parameter.requires_grad_(parameter is not decoder_weight)
    before = _accuracy(head, heldout_states, heldout_targets, fit_batch_size)
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.01)
    steps = epochs * math.ceil(len(train_targets) / fit_batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(steps, 1))
    head.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        permutation = torch.randperm(len(train_targets), generator=generator).to(device)
        total = 0.0
        for indices in permutation.split(fit_batch_size):
            loss = nn.functional.cross_entropy(head(train_states[indices]), train_targets[indices])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(indices)
        logger.info(f"MLM head fit: epoch {epoch + 1}/{epochs}, train loss {total / max(len(train_targets), 1):.3f}")
    fit_seconds = time.perf_counter() - started
    for parameter in head.parameters():
        parameter.requires_grad_(requires_grad[id(parameter)])
    after = _accuracy(head, heldout_states, heldout_targets, fit_batch_size)
    report = MLMHeadFitReport(
        sentences=len(train),
        heldout_sentences=len(heldout),
        train_positions=len(train_targets),
        heldout_positions=len(heldout_targets),
        epochs=epochs,
        heldout_accuracy_before=before,
        heldout_accuracy_after=after,
        encode_seconds=round(encode_seconds, 2),
        fit_seconds=round(fit_seconds, 2),
    )
    logger.info(f"MLM head fit: held-out masked-token accuracy {before:.3f} -> {after:.3f}")
    return report


def read_sentences(paths: Iterable[str | PathLike]) -> list[str]:
    """Distinct unlabelled sentences, in order: the lines of `.txt` files, the `text` of every record of mention
    files in any format `load_mentions` reads (their labels are not used)."""
    sentences: list[str] = []
    for path in paths:
        if Path(path).suffix == ".txt":
            sentences.extend(line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
        else:
            sentences.extend(load_mentions(str(path))["text"])
    return list(dict.fromkeys(sentence for sentence in sentences if sentence))


REPORT_FILE = "mlm_head_report.json"
HEAD_PREFIX = "cls.predictions.transform."


def _load_masked_lm(name_or_path: str | PathLike) -> tuple[BertForMaskedLM, bool]:
    """`BertForMaskedLM` from any BERT checkpoint, and whether its MLM head came from the checkpoint."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a BERT without MLM head is reported as "corrupted"; we say what it means
    try:
        model, info = BertForMaskedLM.from_pretrained(name_or_path, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, not any(key.startswith(HEAD_PREFIX) for key in info["missing_keys"])


def has_mlm_head(name_or_path: str | PathLike) -> bool:
    """Whether a BERT checkpoint carries a trained MLM head (`cls.predictions.transform.*`)."""
    return _load_masked_lm(name_or_path)[1]


def build_encoder_with_mlm_head(
    name_or_path: str | PathLike, sentences: Iterable[str], output_dir: str | PathLike, **fit_options
) -> MLMHeadFitReport:
    """Save `name_or_path` with a fitted MLM head as a standard `BertForMaskedLM` folder (plus tokenizer and report).

    The folder loads anywhere a BERT checkpoint does (`from_encoder`, `AutoModelForMaskedLM`). It is written to a
    temporary folder first and renamed into place, so an interrupted fit never leaves a half-written encoder.
    """
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} exists; choose a new folder (an encoder folder is never overwritten).")
    model, _ = _load_masked_lm(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    report = fit_mlm_head(model, tokenizer, sentences, **fit_options)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / REPORT_FILE).write_text(
            json.dumps({"encoder": str(name_or_path), **report.to_dict(), "fit_options": fit_options}, indent=2)
        )
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def default_cache_dir() -> Path:
    """Where fitted heads are cached: `$MODELING_ENTITY_TYPING_CACHE`, else `~/.cache/modeling_entity_typing`."""
    configured = os.environ.get("MODELING_ENTITY_TYPING_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "modeling_entity_typing"


def cached_encoder_with_mlm_head(
    name_or_path: str | PathLike,
    sentences: Iterable[str],
    cache_dir: str | PathLike | None = None,
    **fit_options,
) -> Path:
    """`name_or_path` with an MLM head fitted on `sentences`, built once and reused: the folder is keyed by the
    encoder, the sentences and the fit options, so a different corpus or setting builds its own."""
    sentences = list(dict.fromkeys(sentences))
    digest = hashlib.sha256(
        json.dumps([str(name_or_path), sentences, sorted(fit_options.items())]).encode()
    ).hexdigest()[:16]
    folder = Path(cache_dir or default_cache_dir()) / "mlm_heads" / f"{Path(str(name_or_path)).name}-{digest}"
    if (folder / REPORT_FILE).is_file():
        logger.info(f"Using the encoder with a fitted MLM head cached at {folder}")
        return folder
    logger.info(
        f"{name_or_path} has no MLM head: fitting one on {len(sentences)} sentences (once; cached at {folder})"
    )
    report = build_encoder_with_mlm_head(name_or_path, sentences, folder, **fit_options)
    logger.info(
        f"Fitted the MLM head in {report.encode_seconds + report.fit_seconds:.0f} s; held-out masked-token accuracy "
        f"{report.heldout_accuracy_before:.3f} -> {report.heldout_accuracy_after:.3f}"
    )
    return folder


__all__ = [
    "MLMHeadFitReport",
    "build_encoder_with_mlm_head",
    "cached_encoder_with_mlm_head",
    "default_cache_dir",
    "fit_mlm_head",
    "has_mlm_head",
    "read_sentences",
]
