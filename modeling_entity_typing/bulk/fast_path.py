"""How the bulk typer scores mentions, and `--fast auto`: the fastest path that keeps fp32's answers on this machine.

Paths (`FAST_PATHS`), each a `Scorer` that turns templated mentions into probabilities:

* `"fp32"`: the model as loaded (`TorchScorer`).
* `"bf16"`: a bfloat16 copy of the model (`optimize_for_cpu`) for the mention vectors, scored in fp32 against the
  fp32 type matrix. Fast only on CPUs with native bf16 arithmetic (`cpu_supports_bf16`); elsewhere emulated and slower.
* `"int8"`: onnxruntime's dynamic int8 graph of the model (`export_onnx(quantize="int8")`, `OnnxScorer`). Its error
  depends on the CPU's int8 kernels (BENCHMARKS.md, "int8 across CPUs").

Every path computes the label set's type matrix once (the torch paths hold `model.type_embeddings()`, the ONNX graph
stores it as a constant). `choose_fast_path("auto", ...)` tries the paths this CPU can run fast on the first
mentions of the input, times those whose top label agrees with fp32's on at least `min_agreement` of them against
fp32 in alternating rounds, and keeps the fastest (fp32 itself always qualifies); the choice, the CPU and every
measurement go to the manifest.
"""

import copy
import importlib.util
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

from ..calibration import calibrated_scores
from ..contract import EntityTypingModel
from ..export.cpu_inference import cpu_description, cpu_supports_bf16, optimize_for_cpu
from ..export.onnx_export import METADATA_FILE, ONNX_FILE, export_onnx, pad_mentions
from ..mention_encoding import EncodedMention
from .typer import Scorer


logger = logging.getLogger(__name__)

FastPath = Literal["auto", "fp32", "bf16", "int8"]
FAST_PATHS = ("fp32", "bf16", "int8")
# Top labels of a faster path that must be fp32's, on the self-check mentions, for `auto` to take it.
MIN_AGREEMENT = 0.98
# Rounds of the `auto` timing, each fp32 and a candidate back to back; the median speed-up counts.
TIMING_ROUNDS = 3


class TorchScorer:
    """`calibrated_scores(model.embed_mentions(...), type_matrix)` (the model's own forward, FiveFine and Cross-C
    alike) with the type matrix computed once; `model` may be a bf16 copy, the scores are computed in fp32."""

    def __init__(
        self,
        name: str,
        model: EntityTypingModel,
        type_matrix: torch.Tensor,
        config: Any,
        tokenizer: PreTrainedTokenizerBase,
    ):
        self.name, self.model, self.tokenizer = name, model.eval(), tokenizer
        self.type_matrix, self.config = type_matrix, config
        self.device = next(model.parameters()).device

    def __call__(self, encoded: Sequence[EncodedMention]) -> torch.Tensor:
        batch = pad_mentions(encoded, self.tokenizer, return_tensors="pt")
        with torch.inference_mode():
            vectors = self.model.embed_mentions(
                batch["input_ids"].to(self.device),
                batch["attention_mask"].to(self.device),
                batch["mention_positions"].to(self.device),
            )
            return calibrated_scores(vectors.float(), self.type_matrix, self.config).sigmoid().cpu()


class OnnxScorer:
    """An exported graph (`export_onnx`) on onnxruntime's CPU provider with `threads` intra-op threads."""

    def __init__(self, name: str, export_dir: Path, tokenizer: PreTrainedTokenizerBase, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.name, self.tokenizer = name, tokenizer
        self.session = onnxruntime.InferenceSession(
            str(export_dir / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, encoded: Sequence[EncodedMention]) -> torch.Tensor:
        feed = pad_mentions(encoded, self.tokenizer, return_tensors="np")
        logits = self.session.run(["logits"], {name: value.astype("int64") for name, value in feed.items()})[0]
        return torch.from_numpy(logits).float().sigmoid()


def int8_available() -> bool:
    """Whether onnxruntime and torch's ONNX exporter (onnxscript) are installed (the `onnx` extra)."""
    return all(importlib.util.find_spec(module) is not None for module in ("onnxruntime", "onnxscript"))


class ScorerFactory:
    """Builds the scorer of each path for one model (its configured label set) and tokenizer.

    The type matrix is computed once, from the fp32 model, and shared by the torch paths. The int8 graph is exported
    into `work_dir` once and reused when it is there (a resumed run scores with the very graph it started with).
    """

    def __init__(self, model: EntityTypingModel, tokenizer: PreTrainedTokenizerBase, work_dir: Path, threads: int):
        self.model, self.tokenizer, self.work_dir, self.threads = model.eval(), tokenizer, work_dir, threads
        with torch.inference_mode():
            self.type_matrix = model.type_embeddings().detach().float()

    def __call__(self, name: str) -> Scorer:
        if name == "fp32":
            return TorchScorer("fp32", self.model, self.type_matrix, self.model.config, self.tokenizer)
        if name == "bf16":
            bf16 = optimize_for_cpu(copy.deepcopy(self.model), "bf16")
            return TorchScorer("bf16", bf16, self.type_matrix, self.model.config, self.tokenizer)
        if name == "int8":
            if not int8_available():
                raise RuntimeError(
                    'The int8 path needs onnxruntime and onnxscript: pip install "modeling-entity-typing[onnx]".'
                )
            export_dir = self.work_dir / "int8-onnx"
            if not ((export_dir / ONNX_FILE).is_file() and (export_dir / METADATA_FILE).is_file()):
                export_onnx(
                    self.model,
                    self.tokenizer,
                    export_dir,
                    quantize="int8",
                    with_mention_embeddings=False,
                    overwrite=True,
                )
            return OnnxScorer("int8", export_dir, self.tokenizer, self.threads)
        raise ValueError(f"Unknown fast path {name!r}; choose one of {FAST_PATHS} or 'auto'.")


@dataclass
class FastPathChoice:
    """Which path types the run and why: the request, the CPU, and for `auto` each candidate's measurements."""

    requested: str
    chosen: str
    reason: str
    cpu: dict[str, Any] = field(default_factory=cpu_description)
    min_agreement: float = MIN_AGREEMENT
    checked_mentions: int = 0
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _top_labels(scorer: Scorer, batches: list[list[EncodedMention]]) -> torch.Tensor:
    """The top label of each mention; the pass also prepares every batch shape (kernels are set up per shape on
    their first call), so that the timed passes after it time the work alone."""
    return torch.cat([scorer(batch).argmax(dim=-1) for batch in batches])


def _seconds(scorer: Scorer, batches: list[list[EncodedMention]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        scorer(batch)
    return time.perf_counter() - started


def _speed_against(
    reference: Scorer, candidate: Scorer, batches: list[list[EncodedMention]], rounds: int
) -> tuple[float, list[float]]:
    """The candidate's speed over fp32's (median over `rounds`) and fp32's seconds per round. Each round times both
    back to back, so that other work on the machine weighs on both alike."""
    ratios, reference_seconds = [], []
    for _ in range(rounds):
        reference_seconds.append(_seconds(reference, batches))
        ratios.append(reference_seconds[-1] / max(_seconds(candidate, batches), 1e-9))
    return statistics.median(ratios), reference_seconds


def choose_fast_path(
    requested: str,
    build: Callable[[str], Scorer],
    sample: Sequence[EncodedMention],
    batch_size: int,
    needed: int,
    min_agreement: float = MIN_AGREEMENT,
    bf16_native: bool | None = None,
    int8_installed: bool | None = None,
    rounds: int = TIMING_ROUNDS,
) -> tuple[Scorer, FastPathChoice]:
    """The scorer for `requested` (`"auto"` or a path of `FAST_PATHS`) and the record of the choice.

    `auto` runs the paths this machine can run fast on `sample`, the input's first mentions (in length-sorted
    batches of `batch_size`, as the run will), keeps those whose top labels agree with fp32's on at least
    `min_agreement` of them, times each against fp32 in `rounds` alternating rounds (on every other batch, lengths
    short to long), and takes the fastest (fp32 unless another is faster). With fewer than `needed` mentions in
    `sample` it keeps fp32: too few to judge, and too few to pay for the check.
    """
    if requested != "auto":
        if requested not in FAST_PATHS:
            raise ValueError(f"Unknown fast path {requested!r}; choose 'auto' or one of {FAST_PATHS}.")
        return build(requested), FastPathChoice(requested, requested, "asked for")
    if len(sample) < needed:
        reason = f"the input has fewer than {needed} mentions to check a faster path on (--self_check_mentions)"
        return build("fp32"), FastPathChoice("auto", "fp32", reason, min_agreement=min_agreement)
    bf16_native = cpu_supports_bf16() if bf16_native is None else bf16_native
    int8_installed = int8_available() if int8_installed is None else int8_installed
    ordered = sorted(sample, key=lambda e: len(e.input_ids))
    batches = [list(ordered[begin : begin + batch_size]) for begin in range(0, len(ordered), batch_size)]
    reference = build("fp32")
    reference_top = _top_labels(reference, batches)
    candidates: dict[str, dict[str, Any]] = {"fp32": {"agreement": 1.0, "accepted": True, "speed_vs_fp32": 1.0}}
    scorers, reference_seconds = {"fp32": reference}, []
    why_not = {
        "bf16": None
        if bf16_native
        else "this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX): bf16 is emulated here and slower than fp32",
        "int8": None if int8_installed else "onnxruntime / onnxscript are not installed (the `onnx` extra)",
    }
    for name, reason in why_not.items():
        if reason is not None:
            candidates[name] = {"accepted": False, "note": reason}
            continue
        try:
            scorer = build(name)
            agreement = float((_top_labels(scorer, batches) == reference_top).float().mean())
            record = {"agreement": round(agreement, 4), "accepted": agreement >= min_agreement}
            if record["accepted"]:
                speed, seconds = _speed_against(reference, scorer, batches[::2], rounds)
                reference_seconds += seconds
                record["speed_vs_fp32"] = round(speed, 3)
                scorers[name] = scorer
            else:
                record["note"] = f"top label agrees with fp32 on {agreement:.2%} < {min_agreement:.0%} of the mentions"
        except Exception as error:  # a path that cannot run here is no candidate; the run goes on without it
            logger.warning(f"--fast auto: the {name} path failed on this machine ({error!r}); not used.")
            record = {"accepted": False, "note": f"failed: {error!r}"[:300]}
        candidates[name] = record
    if reference_seconds:
        timed = sum(len(batch) for batch in batches[::2])
        candidates["fp32"]["mentions_per_second"] = round(timed / statistics.median(reference_seconds), 2)
    for record in candidates.values():
        if "speed_vs_fp32" in record and "mentions_per_second" in candidates["fp32"]:
            record["mentions_per_second"] = round(
                candidates["fp32"]["mentions_per_second"] * record["speed_vs_fp32"], 2
            )
    chosen = max(scorers, key=lambda name: candidates[name]["speed_vs_fp32"])
    reason = (
        f"fastest of the paths whose top label agrees with fp32 on >= {min_agreement:.0%} of the first "
        f"{len(sample)} mentions (speed: median of {rounds} rounds alternating with fp32)"
    )
    choice = FastPathChoice("auto", chosen, reason, min_agreement=min_agreement, checked_mentions=len(sample))
    choice.candidates = candidates
    summary = "; ".join(
        f"{name}: "
        + (f"agreement {c['agreement']}, {c.get('speed_vs_fp32', '-')}x fp32" if c["accepted"] else c["note"])
        for name, c in candidates.items()
    )
    logger.info(f"--fast auto chose {chosen} on {choice.cpu['model']} (flags {choice.cpu['flags']}): {summary}")
    return scorers[chosen], choice


__all__ = [
    "FAST_PATHS",
    "MIN_AGREEMENT",
    "FastPath",
    "FastPathChoice",
    "OnnxScorer",
    "ScorerFactory",
    "TorchScorer",
    "choose_fast_path",
    "int8_available",
]
