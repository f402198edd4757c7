"""Fast CPU inference (issue #15): speed and quality cost of bf16, int8 and ONNX against fp32 eager PyTorch.

    python benchmarks/bench_fast_cpu.py --output benchmarks/results/fast_cpu.json

A trained model, FiveFine fine-tuned on OntoNotes 5-shot split 0 (`--model_dir`, by default
`outputs/bench/onto5-fivefine-ufet-crowd-seed1-split0`, a model in the paper's MLM type space made by
`bench_fet_fewshot.py` in `make bench-quality-mlm`; `make bench-quality` makes the encoder-space ones), and
the OntoNotes test set (`--test_file`, 3,461 mentions, read and scored as `examples/finetune_fet.py` does: format
"ali", right context from the tokens, argmax type plus its ancestors, hierarchical micro-F1 from
`evaluation.scoring.typing_scores`). Systems, all on the same pre-tokenised batches (padded to each batch's longest):

* `fp32`: the model as loaded, eager, `torch.inference_mode` (the reference);
* `torch_int8_dynamic`: `torch.ao.quantization.quantize_dynamic` on the encoder's Linear layers (deprecated API:
  torch announces its removal; its warnings are printed and kept in the JSON);
* `bf16`: `optimize_for_cpu(model, "bf16")`; `bf16_autocast`: the fp32 model under `torch.autocast("cpu", bf16)`;
* `bf16_compiled`: `optimize_for_cpu(model, "bf16-compiled")` (the compile time is reported apart);
* `onnx_fp32`, `onnx_int8`: `export_onnx(...)` and `export_onnx(..., quantize="int8")` run by `OnnxEntityTyper`'s
  onnxruntime session (intra-op threads `--threads`, inter-op 1, thread spinning off so that an idle runtime does not
  take CPU from the next system).

Per system: test micro-F1 on all mentions and its difference to fp32, the share of mentions whose top type equals
fp32's, batch-`--batch_size` throughput on the first `--timing_mentions` (rounds alternating between systems; ratio to
fp32 per round, median and min-max), and batch-1 latency p50/p95 over `--latency_calls` single-mention calls (also
interleaved, in blocks of 25). `pipeline` rows: `pipeline("entity-typing")` end to end (tokenisation, decision) at the
same batch size, fp32 against the `optimize_for_cpu` models. The share of the machine's CPU time taken by other
processes during the timing is recorded (`other_processes_cpu_share`): on a shared machine, rely on the ratios.
"""

import argparse
import copy
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from common import DEFAULT_DATA_DIR, interleaved_medians, machine, pad_batches, report, summary
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, pipeline
from transformers.utils import logging as hf_logging

from modeling_entity_typing import decide, load_mentions, optimize_for_cpu, typing_scores
from modeling_entity_typing.export.onnx_export import INPUT_NAMES, OnnxEntityTyper, export_onnx


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "outputs" / "bench" / "onto5-fivefine-ufet-crowd-seed1-split0"
DEFAULT_TEST = DEFAULT_DATA_DIR / "fivefine" / "alifet" / "ontonotes" / "onto_test_ali.json"
SYSTEMS = ("fp32", "torch_int8_dynamic", "bf16", "bf16_autocast", "bf16_compiled", "onnx_fp32", "onnx_int8")
LATENCY_BLOCK = 25  # single-mention calls per system before switching to the next
# Targets of issue #15 for the fast path.
TARGET = {"speedup": 1.8, "micro_f1_loss_points": 0.5, "same_top_type": 0.98}

Logits = Callable[[dict[str, torch.Tensor]], np.ndarray]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, default=DEFAULT_MODEL, help="A trained FiveFine model folder.")
    parser.add_argument("--test_file", type=Path, default=DEFAULT_TEST, help="OntoNotes test set (format 'ali').")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="fp32 always runs.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--timing_mentions", type=int, default=1024, help="Mentions timed per throughput round.")
    parser.add_argument("--repeats", type=int, default=4, help="Throughput rounds (after the quality pass warm-up).")
    parser.add_argument("--latency_calls", type=int, default=500, help="Single-mention calls per system.")
    parser.add_argument("--threads", type=int, default=2, help="Intra-op threads of torch and onnxruntime.")
    parser.add_argument("--quality_mentions", type=int, default=None, help="Score only the first N (smoke runs).")
    parser.add_argument("--no_pipeline", action="store_true", help="Skip the end-to-end pipeline rows.")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "fast_cpu.json")
    args = parser.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        parser.error(
            f"--model_dir {str(args.model_dir)!r} holds no trained model (no config.json). `make bench-quality-mlm` "
            "makes the default one (given outputs/bench/ufet-crowd-seed1, only its split 0: `python "
            "benchmarks/bench_fet_fewshot.py --method fivefine --model_name_or_path outputs/bench/ufet-crowd-seed1 "
            "--splits 0 --output /tmp/onto_split0.json`); or pass another trained FiveFine model folder."
        )
    if not args.test_file.is_file():
        parser.error(
            f"--test_file {str(args.test_file)!r} does not exist: it is FiveFine's OntoNotes test set "
            "(onto_test_ali.json), expected under ../shared/data/fivefine/alifet/ontonotes/ beside the repository."
        )
    for name in ("batch_size", "timing_mentions", "repeats", "latency_calls", "threads", "quality_mentions"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    args.systems = ["fp32", *(name for name in args.systems if name != "fp32")]
    return args


# ----------------------------------------------------------------------------------------------------------- systems
def torch_logits(model: torch.nn.Module, autocast: bool = False) -> Logits:
    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return model(**batch).logits.float().numpy()

    return run


def onnx_logits(typer: OnnxEntityTyper) -> Logits:
    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        return typer.session.run(None, {name: batch[name].numpy() for name in INPUT_NAMES})[0]

    return run


def quantize_torch_int8(model: torch.nn.Module) -> tuple[torch.nn.Module, list[str]]:
    """Dynamic int8 of the encoder's Linear layers (the heads stay fp32); returns the warnings torch raised."""
    model = copy.deepcopy(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.ao.quantization.quantize_dynamic(model.base_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    messages = list(dict.fromkeys(f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught))
    for message in messages:
        tqdm.write(f"torch_int8_dynamic: {message}")
    return model, messages


def build_systems(args, model, tokenizer, scratch: Path) -> tuple[dict[str, Logits], dict[str, object], dict]:
    """Each requested system's logits function, the torch models to run through the pipeline, and build notes."""
    systems: dict[str, Logits] = {"fp32": torch_logits(model)}
    pipeline_models: dict[str, object] = {"fp32": model}
    notes: dict[str, dict] = {}
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name in tqdm(args.systems[1:], desc="building systems"):
        start = time.perf_counter()
        if name == "torch_int8_dynamic":
            quantized, messages = quantize_torch_int8(model)
            systems[name] = torch_logits(quantized)
            notes[name] = {"warnings": messages}
        elif name in ("bf16", "bf16_compiled"):
            fast = optimize_for_cpu(copy.deepcopy(model), "bf16" if name == "bf16" else "bf16-compiled")
            systems[name] = torch_logits(fast)
            pipeline_models[name] = fast
        elif name == "bf16_autocast":
            systems[name] = torch_logits(copy.deepcopy(model), autocast=True)
        else:  # onnx_fp32, onnx_int8
            folder = export_onnx(
                model,
                tokenizer,
                scratch / name,
                with_mention_embeddings=False,
                quantize="int8" if name == "onnx_int8" else None,
            )
            typer = OnnxEntityTyper(folder, num_threads=args.threads, session_options=options)
            systems[name] = onnx_logits(typer)
            size = sum(path.stat().st_size for path in folder.glob("model.onnx*"))
            notes[name] = {"model_megabytes": round(size / 2**20, 1), "quantization": typer.metadata["quantization"]}
        notes.setdefault(name, {})["build_seconds"] = round(time.perf_counter() - start, 1)
    return systems, pipeline_models, notes


# ----------------------------------------------------------------------------------------------------------- quality
def quality(systems: dict[str, Logits], batches, labels, gold, decision: str, threshold: float, notes: dict) -> dict:
    """Test scores of each system (the quality pass also warms every system up) against fp32's."""
    logits = {}
    for name, run in tqdm(systems.items(), desc="quality (all test mentions)"):
        start = time.perf_counter()
        first = run(batches[0])
        notes.setdefault(name, {})["first_batch_seconds"] = round(time.perf_counter() - start, 2)
        logits[name] = np.concatenate([first, *(run(batch) for batch in batches[1:])])
    results = {}
    reference_top = logits["fp32"].argmax(axis=1)
    for name, values in logits.items():
        probabilities = torch.from_numpy(values).sigmoid()
        predicted = [[item["label"] for item in decide(row, labels, decision, threshold)] for row in probabilities]
        scores = typing_scores(predicted, gold, hierarchical=True)
        results[name] = {
            "micro_f1": 100 * scores["micro_f1"],
            "macro_f1": 100 * scores["macro_f1"],
            "strict_accuracy": 100 * scores["strict_accuracy"],
            "same_top_type_as_fp32": float((values.argmax(axis=1) == reference_top).mean()),
            "max_abs_logit_difference_to_fp32": float(np.abs(values - logits["fp32"]).max()),
        }
    for values in results.values():
        values["micro_f1_difference_to_fp32"] = values["micro_f1"] - results["fp32"]["micro_f1"]
    return results


# ------------------------------------------------------------------------------------------------------------ timing
class OtherProcesses:
    """The share of the machine's CPU time used by other processes between `start()` and `stop()` (Linux)."""

    def start(self) -> None:
        self.begin = (self._busy(), self._own(), time.perf_counter())

    def stop(self) -> float | None:
        busy, own, wall = self._busy(), self._own(), time.perf_counter()
        if busy is None:
            return None
        others = (busy - self.begin[0]) - (own - self.begin[1])
        return round(max(0.0, others) / ((wall - self.begin[2]) * os.cpu_count()), 3)

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system


def throughput(systems: dict[str, Logits], batches, count: int, repeats: int) -> dict:
    runs = {name: (lambda run=run: [run(batch) for batch in batches]) for name, run in systems.items()}
    times = interleaved_medians(runs, repeats=repeats, warmup=0)  # the quality pass warmed every system up
    return {name: rate_row(times, name, count) for name in times}


def rate_row(times: dict[str, list[float]], name: str, count: int) -> dict:
    ratios = [reference / own for reference, own in zip(times["fp32"], times[name])]
    return {
        "seconds_per_round": summary(times[name]),
        "mentions_per_second": count / statistics.median(times[name]),
        "speedup_vs_fp32": {**summary(ratios), "per_round": [round(r, 3) for r in ratios]},
    }


def latency(systems: dict[str, Logits], singles, calls: int) -> dict:
    """Batch-1 latency of each system over `calls` single-mention calls, systems alternating every block."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    for begin in tqdm(range(0, calls, LATENCY_BLOCK), desc="batch-1 latency"):
        for name, run in systems.items():
            for batch in singles[begin : min(begin + LATENCY_BLOCK, calls)]:
                start = time.perf_counter()
                run(batch)
                times[name].append(time.perf_counter() - start)
    return {
        name: {
            "p50_ms": 1000 * float(np.percentile(values, 50)),
            "p95_ms": 1000 * float(np.percentile(values, 95)),
            "calls": len(values),
        }
        for name, values in times.items()
    }


def pipeline_throughput(models: dict[str, object], tokenizer, mentions, batch_size: int, repeats: int) -> dict:
    """`pipeline("entity-typing")` end to end over the same mentions, systems alternating every round."""
    items = [{"text": text, "span": (start, end)} for text, start, end in mentions]
    typers = {name: pipeline("entity-typing", model=model, tokenizer=tokenizer) for name, model in models.items()}
    runs = {name: (lambda typer=typer: typer(items, batch_size=batch_size)) for name, typer in typers.items()}
    times = interleaved_medians(runs, repeats=repeats, warmup=1)
    return {name: rate_row(times, name, len(items)) for name in times}


# -------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    started = time.perf_counter()

    model = AutoModel.from_pretrained(args.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    test = load_mentions(args.test_file, "ali", right_context="tokens")
    if args.quality_mentions is not None:
        test = test.select(range(min(args.quality_mentions, len(test))))
    mentions = list(zip(test["text"], test["start"], test["end"]))
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    batches = pad_batches(encoded, args.batch_size, tokenizer.pad_token_id)
    timed = mentions[: args.timing_mentions]
    timed_batches = pad_batches(encoded[: len(timed)], args.batch_size, tokenizer.pad_token_id)
    singles = pad_batches(encoded[: args.latency_calls], 1, tokenizer.pad_token_id)

    with tempfile.TemporaryDirectory() as scratch:
        systems, pipeline_models, notes = build_systems(args, model, tokenizer, Path(scratch))
        config = model.config
        scores = quality(
            systems, batches, config.label_list(), test["labels"], config.decision, config.threshold, notes
        )
        others = OtherProcesses()
        others.start()
        rates = throughput(systems, timed_batches, len(timed), args.repeats)
        latencies = latency(systems, singles, args.latency_calls)
        end_to_end = None
        if not args.no_pipeline:
            end_to_end = pipeline_throughput(pipeline_models, tokenizer, timed, args.batch_size, args.repeats)
        other_share = others.stop()

    rows = {name: {**scores[name], **rates[name], "batch1_latency": latencies[name]} for name in systems}
    meets = {
        name: row["speedup_vs_fp32"]["median"] >= TARGET["speedup"]
        and -row["micro_f1_difference_to_fp32"] <= TARGET["micro_f1_loss_points"]
        and row["same_top_type_as_fp32"] >= TARGET["same_top_type"]
        for name, row in rows.items()
        if name != "fp32"
    }
    results = {
        "benchmark": "fast_cpu_inference",
        "model_dir": str(args.model_dir),
        "test_file": str(args.test_file),
        "num_test_mentions": len(mentions),
        "timing_mentions": len(timed),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "mean_padded_length_timed": float(np.mean([batch["input_ids"].shape[1] for batch in timed_batches])),
        "decision": config.decision,
        "systems": rows,
        "pipeline": end_to_end,
        "build": notes,
        "target": TARGET,
        "meets_target": meets,
        "other_processes_cpu_share": other_share,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            **machine(),
            "onnxruntime": onnxruntime.__version__,
            "cpu_count": os.cpu_count(),
            "avx512_bf16": bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()),
            "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
        },
    }
    report(results, args.output)
    print_table(results)
    return results


def print_table(results: dict) -> None:
    print("\nsystem | mentions/s | speedup median (min-max) | micro-F1 (diff) | same top type | batch-1 p50/p95 ms")
    for name, row in results["systems"].items():
        speed, latency = row["speedup_vs_fp32"], row["batch1_latency"]
        cells = [
            name,
            f"{row['mentions_per_second']:.1f}",
            f"{speed['median']:.2f} ({speed['min']:.2f}-{speed['max']:.2f})",
            f"{row['micro_f1']:.2f} ({row['micro_f1_difference_to_fp32']:+.2f})",
            f"{100 * row['same_top_type_as_fp32']:.2f}%",
            f"{latency['p50_ms']:.1f} / {latency['p95_ms']:.1f}",
        ]
        print(" | ".join(cells))
    for name, row in (results["pipeline"] or {}).items():
        speed = row["speedup_vs_fp32"]
        print(f"pipeline {name} | {row['mentions_per_second']:.1f} | {speed['median']:.2f}")
    print(f"meets target: {results['meets_target']}; others' CPU share {results['other_processes_cpu_share']}")


if __name__ == "__main__":
    main()
