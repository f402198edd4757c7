"""ONNX export of the inference path, with the type matrix computed once and stored as a constant, and an
onnxruntime typer that takes the pipeline's inputs and returns its results.

The exported graph is `logits = embed_mentions(input_ids, attention_mask, mention_positions) @ type_matrix.T`, so the
label set is fixed at export time (call `model.set_label_set` first to export another one). Needs the `onnx` extra:
`pip install "modeling-entity-typing[onnx]"` (onnx, onnxruntime and onnxscript, which torch's exporter uses).

`quantize="int8"` stores onnxruntime's dynamic int8 quantization of the graph instead (int8 weights, activations
quantized per call); its speed and quality cost are measured in BENCHMARKS.md, "Fast CPU inference (issue #15)".
Batches are padded to their longest mention, never to `max_seq_length`: both axes of the inputs are dynamic.
"""

import importlib.util
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging

from ..calibration import calibrated_scores
from ..contract import EntityTypingModel
from ..decision import check_rule_options, decide, own_thresholds, resolve_rule
from ..mention_inputs import (
    InvalidInput,
    Mention,
    batch_error,
    check_batch_size,
    check_errors_mode,
    check_inputs,
    parse_input,
    problems_of,
)
from ..output_paths import prepare_output_dir
from .cpu_inference import cpu_description


logger = logging.get_logger(__name__)

ONNX_FILE = "model.onnx"
METADATA_FILE = "onnx_export.json"
INPUT_NAMES = ("input_ids", "attention_mask", "mention_positions")
# onnxruntime dynamic quantization settings per `quantize=` value. MatMul weights only, one scale per output channel:
# on 512 OntoNotes test mentions of the trained MiniLM FiveFine model (a one-off comparison, not in the benchmark
# script) this kept the fp32 top type more often than the defaults (which also quantize the embedding tables, one
# scale per tensor). Weights in 7 bits (`reduce_range`): onnxruntime multiplies uint8 activations by int8 weights, and
# CPUs without VNNI (AVX2, AVX-512 before VNNI) add pairs of those products in 16 bits, which saturate unless
# |weight| <= 64; on such a CPU full-range weights moved the test model's logits 10x more than on a VNNI CPU, 7-bit
# weights agree on both (`benchmarks/bench_int8_cpus.py`, BENCHMARKS.md, "int8 across CPUs").
QUANTIZATION = {
    "int8": {"weight_type": "QInt8", "per_channel": True, "reduce_range": True, "op_types_to_quantize": ["MatMul"]}
}
# Two mentions of different lengths, so the traced example has padding and neither axis has size 0 or 1 (torch.export
# would specialise such sizes to constants).
_EXAMPLE_MENTIONS = [
    ("Ada Lovelace wrote the first published program.", 0, 12),
    ("The river flows through Paris.", 24, 29),
]

# Mentions of several kinds and lengths on which an int8 export is compared with its fp32 graph (`int8_agreement`).
_PROBE_MENTIONS = [
    *_EXAMPLE_MENTIONS,
    ("Mark Twain wrote in Hartford, Connecticut, for most of the 1870s.", 0, 10),
    ("Shares of Apple rose 3 % after the company reported record iPhone sales.", 10, 15),
    ("The Boston Celtics beat the Lakers 102-99 on Sunday night.", 4, 18),
    ("She was treated with ibuprofen and released from St. Mary's Hospital.", 21, 30),
    ("The Treaty of Versailles was signed in 1919.", 0, 24),
    ("Parliament passed the bill on Tuesday.", 30, 37),
]
# An int8 graph whose logits move by more than this share of the fp32 logits' standard deviation on the probe
# mentions answers differently from its model (BENCHMARKS.md, "int8 across CPUs"): the export warns.
INT8_AGREEMENT_BOUND = 0.1


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f'ONNX export and inference need `{module}`: pip install "modeling-entity-typing[onnx]" '
            "(onnx, onnxruntime, onnxscript)."
        )


class CachedTypeScorer(nn.Module):
    """The model's inference path with its label set's type matrix precomputed: mention vectors scored by dot product
    (through the config's calibration, as the model's own forward).

    `type_matrix` `(num_types, hidden)` is `model.type_embeddings()`, computed once in eval mode without gradients and
    kept as a buffer, so the exported graph holds it as a constant and never re-encodes the types.
    """

    def __init__(self, model: EntityTypingModel, with_mention_embeddings: bool = True):
        super().__init__()
        self.model = model.eval()
        self.with_mention_embeddings = with_mention_embeddings
        with torch.no_grad():
            self.register_buffer("type_matrix", model.type_embeddings().detach().clone())

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mention_positions: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        mention_embeddings = self.model.embed_mentions(input_ids, attention_mask, mention_positions)  # (batch, hidden)
        logits = calibrated_scores(mention_embeddings, self.type_matrix, self.model.config)  # (batch, num_types)
        return (logits, mention_embeddings) if self.with_mention_embeddings else (logits,)


def pad_mentions(encoded: Sequence, tokenizer: PreTrainedTokenizerBase, return_tensors: str) -> dict[str, Any]:
    """Right-pad templated mentions (objects with `.input_ids`, `.mention_position`) into the exported inputs."""
    # Right padding whatever the tokenizer's default: mention positions count from the start of each row.
    # Padded to the batch's longest mention, not to max_seq_length: the exported axes are dynamic.
    batch = tokenizer.pad(
        [{"input_ids": e.input_ids} for e in encoded],
        padding="longest",
        padding_side="right",
        return_tensors=return_tensors,
    )
    positions = [e.mention_position for e in encoded]
    batch["mention_positions"] = torch.tensor(positions) if return_tensors == "pt" else np.array(positions)
    return {name: batch[name] for name in INPUT_NAMES}


def export_onnx(
    model: EntityTypingModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | Path,
    *,
    opset_version: int | None = None,
    with_mention_embeddings: bool = True,
    quantize: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export `model` (its configured label set) to `output_dir/model.onnx` (+ `model.onnx.data`, the weights).

    Returns the folder, which also gets the tokenizer, the config and `onnx_export.json` (labels, decision rule,
    input and output names, quantization): all `OnnxEntityTyper` needs. Batch and sequence axes are dynamic. The
    model is put in eval mode. `quantize="int8"` writes onnxruntime's dynamic int8 graph as `model.onnx` instead
    (one file, no `.data`). A non-empty `output_dir` (say, a fine-tuned run's folder, whose config and tokenizer
    would be replaced) is refused before anything is written; `overwrite=True` empties it first.
    """
    if quantize is not None and quantize not in QUANTIZATION:
        raise ValueError(
            f"Unknown quantize={quantize!r}; choose one of {sorted(QUANTIZATION)} (onnxruntime dynamic "
            "quantization), or None for the fp32 graph."
        )
    _require("onnxscript")
    if quantize is not None:
        _require("onnxruntime")
    # `name_or_path` is the folder `from_pretrained` read: replacing the output must not delete the model exported.
    output_dir = prepare_output_dir(output_dir, overwrite, keep=getattr(model, "name_or_path", None) or None)
    scorer = CachedTypeScorer(model, with_mention_embeddings).eval()
    encoder = model.get_mention_encoder(tokenizer)
    example = pad_mentions(encoder.encode_batch(_EXAMPLE_MENTIONS), tokenizer, return_tensors="pt")
    example = {name: tensor.to(scorer.type_matrix.device) for name, tensor in example.items()}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    output_names = ["logits", "mention_embeddings"][: 2 if with_mention_embeddings else 1]
    # The dynamo exporter (torch.export) handles BERT's attention-mask code and both axes; the deprecated TorchScript
    # exporter is not needed as a fallback.
    with warnings.catch_warnings():
        # torch warns that each axis name "will not be used" because input_ids and attention_mask share it; the
        # exported graph does carry the names (`batch`, `sequence`).
        warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning)
        program = torch.onnx.export(
            scorer,
            tuple(example[name] for name in INPUT_NAMES),
            str(output_dir / ONNX_FILE),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=output_names,
            dynamic_shapes={
                "input_ids": {0: batch, 1: sequence},
                "attention_mask": {0: batch, 1: sequence},
                "mention_positions": {0: batch},
            },
            opset_version=opset_version,
            verbose=False,
        )
    config = model.config
    labels = config.label_list()
    metadata = {
        "model_type": config.model_type,
        "labels": labels,
        "decision": config.decision,
        "threshold": config.threshold,
        "label_thresholds": config.label_thresholds,
        "inputs": list(INPUT_NAMES),
        "outputs": output_names,
        "opset_version": next(o.version for o in program.model_proto.opset_import if o.domain == ""),
        "torch_version": torch.__version__,
        "quantization": None,
    }
    if quantize is not None:
        probes = pad_mentions(encoder.encode_batch(_PROBE_MENTIONS), tokenizer, return_tensors="np")
        metadata["quantization"] = quantize_onnx(
            output_dir / ONNX_FILE,
            quantize,
            check_feed={name: value.astype(np.int64) for name, value in probes.items()},
        )
    (output_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    config.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    logger.info(f"Exported {len(labels)} types to {output_dir / ONNX_FILE}" + (f" ({quantize})" if quantize else ""))
    return output_dir


def int8_agreement(fp32_graph: Path, int8_graph: Path, feed: dict[str, np.ndarray]) -> dict[str, Any]:
    """How far the int8 graph's logits are from the fp32 graph's on `feed`, measured on this CPU.

    The int8 kernels onnxruntime runs depend on the CPU (VNNI or not), so the record names it.
    """
    import onnxruntime

    fp32, int8 = (
        onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(["logits"], feed)[0]
        for graph in (fp32_graph, int8_graph)
    )
    difference = float(np.abs(int8 - fp32).max())
    return {
        "mentions": len(fp32),
        "max_abs_logit_difference": round(difference, 4),
        "max_difference_over_std": round(difference / float(fp32.std()), 4),
        "same_top_type": round(float((int8.argmax(1) == fp32.argmax(1)).mean()), 4),
        "cpu": cpu_description(),
    }


def quantize_onnx(
    onnx_path: Path,
    mode: str,
    settings: dict[str, Any] | None = None,
    check_feed: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Replace the fp32 graph at `onnx_path` (and its `.data` file) by its dynamic quantization; returns the settings.

    `settings` (keys of `QUANTIZATION["int8"]`) replaces the mode's own, for benchmarks that compare settings. With
    `check_feed` (exported inputs), both graphs run on it first and the record gets their `agreement` on this CPU; a
    warning says when the int8 logits move by more than `INT8_AGREEMENT_BOUND` of the fp32 logits' spread.

    onnxruntime's pre-processing runs first, as its quantizer recommends; its symbolic shape inference does not
    complete on the dynamo export's graph, so that step is skipped (ONNX shape inference and graph optimisation
    still run).
    """
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    settings = dict(QUANTIZATION[mode] if settings is None else settings)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True, save_as_external_data=True)
        quantized = Path(scratch) / "quantized.onnx"
        quantize_dynamic(
            prepared,
            quantized,
            weight_type=QuantType[settings["weight_type"]],
            per_channel=settings["per_channel"],
            reduce_range=settings["reduce_range"],
            op_types_to_quantize=settings["op_types_to_quantize"],
        )
        agreement = None if check_feed is None else int8_agreement(onnx_path, quantized, check_feed)
        external = onnx_path.with_name(onnx_path.name + ".data")
        external.unlink(missing_ok=True)
        shutil.move(quantized, onnx_path)
    logger.info(f"Quantized to {mode} with onnxruntime {onnxruntime.__version__}: {settings}")
    if agreement is not None and agreement["max_difference_over_std"] > INT8_AGREEMENT_BOUND:
        logger.warning(
            f"The {mode} graph at {onnx_path} answers differently from the fp32 model: on {agreement['mentions']} "
            f"probe mentions, on this CPU ({agreement['cpu']['model']}, flags {agreement['cpu']['flags']}), its "
            f"logits move by up to {agreement['max_abs_logit_difference']} "
            f"({agreement['max_difference_over_std']:.1%} of their spread; bound {INT8_AGREEMENT_BOUND:.0%}) and the "
            f"top type stays for {agreement['same_top_type']:.0%} of them. Dynamic int8 costs some models accuracy "
            "(BENCHMARKS.md: about 1 mention in 10 changes its top type on MiniLM typers), and CPUs without VNNI can "
            "add to it: use the fp32 export (quantize=None), or measure the int8 graph on your own data first."
        )
    return {
        "mode": mode,
        "method": "onnxruntime.quantization.quantize_dynamic",
        "onnxruntime_version": onnxruntime.__version__,
        **settings,
        "agreement": agreement,
    }


def export_pretrained(model_dir: str | Path, output_dir: str | Path, **export_kwargs) -> Path:
    """`export_onnx` for a saved model folder (`save_pretrained` model and tokenizer)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(model_dir)!r} is not a saved model folder (no config.json there). Pass the `output_dir` of "
            "`finetune_fet.py` / `pretrain_ufet.py`, or a folder written by `model.save_pretrained` and "
            "`tokenizer.save_pretrained`."
        )
    model = AutoModel.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return export_onnx(model, tokenizer, output_dir, **export_kwargs)


class OnnxEntityTyper:
    """Types mentions with an exported model on onnxruntime: the inputs and results of `pipeline("entity-typing")`.

    ```python
    >>> typer = OnnxEntityTyper("typer-onnx")
    >>> typer("Mark Twain wrote in Hartford.", span=(0, 10))
    {'mention': 'Mark Twain', 'span': (0, 10), 'labels': [{'label': '/person', 'score': 0.93}], 'truncated': False,
     'mention_truncated': False}
    ```

    The label set is the one exported (no `candidate_labels`), fp32 or quantized (`metadata["quantization"]`).
    Bad inputs are handled as in the pipeline, by the same checks: a single input raises `ValueError` or `TypeError`;
    a list is checked whole before onnxruntime runs and one `EntityTypingInputError` names every bad item, or, with
    `errors="return"`, each bad input comes back as `{"index": i, "error": message}` in its place.
    `num_threads` sets onnxruntime's intra-op threads (default: one per physical core); `session_options`, an
    `onnxruntime.SessionOptions`, is the starting point for anything else (e.g. the config entry
    `session.intra_op.allow_spinning` = "0" on a machine shared with other work).
    """

    def __init__(
        self,
        export_dir: str | Path,
        num_threads: int | None = None,
        providers: Sequence[str] | None = None,
        session_options: Any = None,
    ):
        _require("onnxruntime")
        import onnxruntime

        export_dir = Path(export_dir)
        if not (export_dir / ONNX_FILE).is_file() or not (export_dir / METADATA_FILE).is_file():
            raise FileNotFoundError(
                f"{str(export_dir)!r} holds no exported model ({ONNX_FILE} and {METADATA_FILE}); create one with "
                "`python examples/export_onnx.py --model_dir MODEL --output_dir OUT` or `export_onnx(...)`."
            )
        self.metadata = json.loads((export_dir / METADATA_FILE).read_text())
        self.labels: list[str] = self.metadata["labels"]
        # the default threshold of each label, built once (a tensor of 10,331 for UFET's types)
        self._default_thresholds = own_thresholds(
            self.metadata["threshold"], self.metadata.get("label_thresholds"), self.labels
        )
        self.tokenizer = AutoTokenizer.from_pretrained(export_dir)
        # The mention template is the model family's; building the model on the meta device gives its encoder
        # without loading (or having) any weight.
        with torch.device("meta"):
            shell = AutoModel.from_config(AutoConfig.from_pretrained(export_dir))
        self.mention_encoder = shell.get_mention_encoder(self.tokenizer)
        options = session_options if session_options is not None else onnxruntime.SessionOptions()
        if not isinstance(options, onnxruntime.SessionOptions):
            raise TypeError(f"`session_options` must be an onnxruntime.SessionOptions, got {type(options).__name__}.")
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(
            str(export_dir / ONNX_FILE), options, providers=list(providers or ["CPUExecutionProvider"])
        )

    def run(self, mentions: Sequence[tuple[str, int, int]], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Model outputs (`logits`, and `mention_embeddings` when exported) for `(text, start, end)` mentions."""
        return self._run_encoded(self.mention_encoder.encode_batch(mentions), batch_size)

    def _run_encoded(self, encoded: Sequence, batch_size: int) -> dict[str, np.ndarray]:
        check_batch_size(batch_size, optional=False)
        if not encoded:
            raise ValueError("No mentions given: pass at least one (text, start, end).")
        outputs: dict[str, list[np.ndarray]] = {name: [] for name in self.metadata["outputs"]}
        for begin in range(0, len(encoded), batch_size):
            feed = pad_mentions(encoded[begin : begin + batch_size], self.tokenizer, return_tensors="np")
            for name, value in zip(outputs, self.session.run(None, {k: v.astype(np.int64) for k, v in feed.items()})):
                outputs[name].append(value)
        return {name: np.concatenate(values) for name, values in outputs.items()}

    def __call__(
        self,
        inputs: str | Mapping | Sequence[Mapping],
        span: tuple[int, int] | str | None = None,
        *,
        batch_size: int = 32,
        threshold: float | None = None,
        top_k: int | None = None,
        decision: str | None = None,
        errors: str = "raise",
    ) -> dict | list[dict]:
        """Type one text with `span=` (or one dict), or a list of dicts; options and bad inputs as in the pipeline."""
        check_rule_options(threshold, top_k, decision)
        check_errors_mode(errors)
        check_batch_size(batch_size, optional=False)
        if isinstance(inputs, (str, bytes, bytearray, Mapping)) or not isinstance(inputs, Iterable):
            if not isinstance(inputs, Mapping):
                inputs = {"text": inputs, "span": span}
            elif span is not None:
                raise TypeError("`span=` goes with a text. In a dict give it as the key: {'text': ..., 'span': ...}.")
            try:
                mention = parse_input(inputs)
                encoded = self.mention_encoder.encode_batch([(mention.text, mention.start, mention.end)])
            except (TypeError, ValueError) as error:
                if errors == "return":
                    return {"error": str(error)}
                raise
            return self._type([mention], encoded, batch_size, threshold, top_k, decision)[0]
        if span is not None:
            raise TypeError(
                "`span=` goes with a single text. For many mentions pass dicts: [{'text': ..., 'span': ...}, ...]."
            )
        inputs = list(inputs)
        checked = check_inputs(inputs, self.tokenizer)
        problems = problems_of(checked)
        if problems and errors != "return":
            raise batch_error(problems, len(inputs))
        valid = [value for value in checked if isinstance(value, Mention)]
        encoded = self.mention_encoder.encode_batch([(m.text, m.start, m.end) for m in valid])
        typed = iter(self._type(valid, encoded, batch_size, threshold, top_k, decision))
        return [
            {"index": index, "error": value.message} if isinstance(value, InvalidInput) else next(typed)
            for index, value in enumerate(checked)
        ]

    def _type(
        self,
        mentions: list[Mention],
        encoded: Sequence,
        batch_size: int,
        threshold: float | None,
        top_k: int | None,
        decision: str | None,
    ) -> list[dict]:
        """The pipeline's result for each checked mention (`encoded`: its templated inputs), in order."""
        if not mentions:
            return []
        probabilities = torch.from_numpy(self._run_encoded(encoded, batch_size)["logits"]).sigmoid()
        rule, cut = resolve_rule(decision, threshold, top_k, self.metadata["decision"], self._default_thresholds)
        return [
            {
                "mention": m.text[m.start : m.end],
                "span": (m.start, m.end),
                "truncated": e.truncated,
                "mention_truncated": e.mention_truncated,
                "labels": decide(row, self.labels, decision=rule, threshold=cut, top_k=top_k),
            }
            for m, e, row in zip(mentions, encoded, probabilities)
        ]


__all__ = [
    "QUANTIZATION",
    "CachedTypeScorer",
    "OnnxEntityTyper",
    "export_onnx",
    "export_pretrained",
    "pad_mentions",
    "quantize_onnx",
]
