"""Export a saved entity-typing model to ONNX, with its label set's type matrix computed once and baked in.

    python examples/export_onnx.py --model_dir outputs/demo --output_dir outputs/demo-onnx

The output folder holds `model.onnx` (+ `model.onnx.data`), the tokenizer, the config and `onnx_export.json` (labels,
decision rule); a non-empty `--output_dir` is refused unless `--overwrite_output_dir` is given. Type mentions with
onnxruntime:

    from modeling_entity_typing.export.onnx_export import OnnxEntityTyper
    typer = OnnxEntityTyper("outputs/demo-onnx")
    typer("Mark Twain wrote in Hartford.", span="Hartford")  # same results as pipeline("entity-typing")

Needs `pip install "modeling-entity-typing[onnx]"`. With `--check`, the export is run once on onnxruntime against
PyTorch on a few sentences and the largest logit difference is logged. `--quantize int8` writes onnxruntime's dynamic
int8 graph instead (smaller; its speed and its quality cost are in BENCHMARKS.md, "Fast CPU inference"):

    python examples/export_onnx.py --model_dir outputs/demo --output_dir outputs/demo-onnx-int8 --quantize int8
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, HfArgumentParser
from transformers.utils import logging as hf_logging

import modeling_entity_typing  # noqa: F401  (registers the model families)
from modeling_entity_typing.export.onnx_export import QUANTIZATION, OnnxEntityTyper, export_onnx, pad_mentions
from modeling_entity_typing.training.training_args import Range, check_ranges


logger = logging.getLogger(__name__)

CHECK_MENTIONS = [
    ("Mark Twain wrote most of his novels in Hartford, Connecticut.", 0, 10),
    ("Mark Twain wrote most of his novels in Hartford, Connecticut.", 39, 47),
    ("The Boston Celtics won the championship again.", 4, 19),
]

# The opsets for which torch 2.13's exporter (onnxscript 0.7) wrote a valid graph: every model here has LayerNorm, an
# op of opset 17, and an older opset came out as 18 without a word; past 25, the graph did not load in onnxruntime.
OPSET_RANGE = Range(ge=17, le=25, note="unset: torch's default")


@dataclass
class ExportArguments:
    model_dir: str = field(metadata={"help": "A saved model folder (`save_pretrained` model and tokenizer)."})
    output_dir: str = field(metadata={"help": "Where to write model.onnx, the tokenizer and onnx_export.json."})
    opset: Annotated[int | None, OPSET_RANGE] = field(
        default=None, metadata={"help": "ONNX opset; torch's recommended one when not given."}
    )
    no_mention_embeddings: bool = field(
        default=False, metadata={"help": "Export logits only, without the `mention_embeddings` output."}
    )
    check: bool = field(default=True, metadata={"help": "Compare onnxruntime with PyTorch on a few sentences."})
    quantize: Literal[tuple(sorted(QUANTIZATION))] | None = field(
        default=None, metadata={"help": "Store onnxruntime's dynamic quantization of the graph instead of fp32."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a non-empty --output_dir."})

    def __post_init__(self):
        check_ranges(self)
        if not (Path(self.model_dir) / "config.json").is_file():
            raise FileNotFoundError(
                f"--model_dir {self.model_dir!r} is not a saved model folder (no config.json there): pass the "
                "--output_dir of finetune_fet.py / pretrain_ufet.py, or a folder written by `save_pretrained`."
            )


def max_logit_difference(model, tokenizer, output_dir: str) -> float:
    """Largest |onnxruntime - PyTorch| logit over `CHECK_MENTIONS`."""
    inputs = pad_mentions(model.get_mention_encoder(tokenizer).encode_batch(CHECK_MENTIONS), tokenizer, "pt")
    with torch.no_grad():
        expected = model(**{name: tensor.to(model.device) for name, tensor in inputs.items()}).logits.cpu().numpy()
    got = OnnxEntityTyper(output_dir).run(CHECK_MENTIONS)["logits"]
    return float(np.abs(got - expected).max())


def parse_args(argv: list[str] | None = None) -> ExportArguments:
    (args,) = HfArgumentParser(ExportArguments).parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    hf_logging.set_verbosity_warning()

    model = AutoModel.from_pretrained(args.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    logger.info(f"Exporting {type(model).__name__} ({model.config.num_labels} types) from {args.model_dir}")
    output_dir = export_onnx(
        model,
        tokenizer,
        args.output_dir,
        opset_version=args.opset,
        with_mention_embeddings=not args.no_mention_embeddings,
        quantize=args.quantize,
        overwrite=args.overwrite_output_dir,
    )
    if args.check:
        difference = max_logit_difference(model, tokenizer, output_dir)
        expected = " (quantized: differences of order 1 are expected)" if args.quantize else ""
        logger.info(f"Largest |onnxruntime - PyTorch| logit: {difference:.2e}{expected}")
    logger.info(f"Saved to {output_dir}")
    return output_dir


if __name__ == "__main__":
    main(sys.argv[1:])
