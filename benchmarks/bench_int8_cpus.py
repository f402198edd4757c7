"""int8 ONNX across CPUs: which onnxruntime dynamic-quantization settings keep fp32's answers with and without VNNI.

    python benchmarks/bench_int8_cpus.py --output benchmarks/results/int8_cpus.json

onnxruntime's dynamic int8 MatMul multiplies uint8 activations by int8 weights (U8S8). CPUs with VNNI (AVX512-VNNI,
AVX-VNNI) accumulate those products exactly; AVX2 and AVX-512 CPUs without VNNI add pairs of them in 16 bits
(`vpmaddubsw`), which saturates, so the same int8 graph answers differently there. This benchmark exports one real
model once and runs every candidate setting (`CANDIDATES`) on two CPUs:

* `native`: this machine's CPU (its model and flags are recorded);
* `emulated` (with qemu-user installed, `--emulate_cpu`, default `EPYC-Rome`: AMD Zen 2, AVX2, no AVX-512, no VNNI):
  the same scoring under `qemu-x86_64 -cpu EPYC-Rome`. onnxruntime picks its kernels from the CPUID it sees, so
  the arithmetic is that CPU's; only the time is not, so no speed is reported for it.

Model: the real all-MiniLM-L6-v2 encoder as FiveFine in the encoder type space with FiveFine's OntoNotes label
phrases (the zero-shot model of `bench_fet_baselines.py --method zero_shot_fivefine --type_space encoder`), or
`--model_dir` a saved model. Data: the first `--mentions` OntoNotes test mentions (format "ali"), batches of
`--batch_size` padded to each batch's longest; under emulation the first `--emulated_batches` of them (int8
kernels run about 10x slower there; fp32 ones about 100x, so the fp32 graph runs one batch there, a check of the
emulation itself). Per setting and CPU: the largest |int8 - fp32| logit (and over the
fp32 logits' standard deviation), the share of mentions whose top type is fp32's, and micro-F1 (argmax plus
ancestors, `typing_scores`). Speed (native CPU only): batch throughput of each graph against the fp32 graph,
rounds alternating between graphs.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = {
    "s8_per_channel": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
    "s8_per_channel_reduce_range": {"weight_type": "QInt8", "per_channel": True, "reduce_range": True},
    "u8_per_channel": {"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
    "s8_per_tensor": {"weight_type": "QInt8", "per_channel": False, "reduce_range": False},
    "s8_per_tensor_reduce_range": {"weight_type": "QInt8", "per_channel": False, "reduce_range": True},
}
INPUT_NAMES = ("input_ids", "attention_mask", "mention_positions")


def score_graphs(folder: Path, tag: str, batches_limit: int | None = None) -> None:
    """Run every `*.onnx` in `folder` on `folder/batches.npz` (the first `batches_limit` batches); write
    `folder/logits-<tag>.npz` and the CPU it saw.

    Imports only numpy and onnxruntime, so that it starts quickly under emulation.
    """
    import onnxruntime

    batches = stored_batches(folder)[:batches_limit]
    logits = {}
    for graph in sorted(folder.glob("*.onnx")):
        started = time.perf_counter()
        session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        # fp32 kernels emulate about 10x slower than int8 ones: under a limit, one batch checks the emulation itself
        graph_batches = batches[:1] if batches_limit is not None and graph.stem == "fp32" else batches
        logits[graph.stem] = np.concatenate([session.run(["logits"], batch)[0] for batch in graph_batches])
        print(f"{tag}: {graph.stem} scored in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    np.savez(folder / f"logits-{tag}.npz", **logits)
    from numpy._core._multiarray_umath import __cpu_features__  # CPUID as numpy reads it: true under emulation too

    seen = sorted(name for name, present in __cpu_features__.items() if present and name.startswith("AVX"))
    (folder / f"cpu-{tag}.json").write_text(json.dumps({"cpuid_avx_features": seen}))


def stored_batches(folder: Path) -> list[dict[str, np.ndarray]]:
    stored = np.load(folder / "batches.npz")
    return [{name: stored[f"{index}-{name}"] for name in INPUT_NAMES} for index in range(int(stored["count"]))]


def build(args, folder: Path) -> dict:
    """Export the fp32 graph and each candidate's int8 graph into `folder`; store the batches and fp32 references."""
    import torch

    from modeling_entity_typing.export.onnx_export import export_onnx, quantize_onnx

    model, tokenizer, test, batches = load_model_and_test(args)
    export_onnx(model, tokenizer, folder / "export", quantize=None)
    shutil.copy(folder / "export" / "model.onnx", folder / "fp32.onnx")
    shutil.copy(folder / "export" / "model.onnx.data", folder / "model.onnx.data")  # the fp32 graph's weights
    for name, settings in CANDIDATES.items():
        scratch = folder / f"scratch-{name}"
        shutil.copytree(folder / "export", scratch)
        quantize_onnx(scratch / "model.onnx", "int8", settings={**settings, "op_types_to_quantize": ["MatMul"]})
        shutil.move(scratch / "model.onnx", folder / f"{name}.onnx")
        shutil.rmtree(scratch)
    with torch.inference_mode():
        reference = np.concatenate([model(**batch).logits.numpy() for batch in batches])
    arrays = {f"{index}-{name}": batch[name].numpy() for index, batch in enumerate(batches) for name in INPUT_NAMES}
    np.savez(folder / "batches.npz", count=len(batches), **arrays)
    config = model.config
    return {"reference": reference, "labels": config.label_list(), "gold": test["labels"], "model": model}


def load_model_and_test(args):
    """The model (a saved one, or zero-shot MiniLM in the encoder type space) and the first OntoNotes test batches."""
    from common import DEFAULT_DATA_DIR, pad_batches
    from transformers import AutoModel, AutoTokenizer

    from modeling_entity_typing import BertForPhraseTypeTyping, load_mentions
    from modeling_entity_typing.fivefine.label_phrases import label_phrases_for
    from modeling_entity_typing.training import default_encoder

    folder = DEFAULT_DATA_DIR / "fivefine" / "alifet" / "ontonotes"
    if args.model_dir is not None:
        model, tokenizer = AutoModel.from_pretrained(args.model_dir), AutoTokenizer.from_pretrained(args.model_dir)
    else:
        lines = (folder / "onto_type_vocab_ali.txt").read_text().splitlines()
        labels = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
        model, tokenizer = BertForPhraseTypeTyping.from_encoder(
            default_encoder(), label_phrases_for(labels, "ontonotes"), nwp_loss_weight=0.0, type_space="encoder"
        )
    model.eval()
    test = load_mentions(folder / "onto_test_ali.json", "ali", right_context="tokens")
    test = test.select(range(min(args.mentions, len(test))))
    encoded = model.get_mention_encoder(tokenizer).encode_batch(list(zip(test["text"], test["start"], test["end"])))
    return model, tokenizer, test, pad_batches(encoded, args.batch_size, tokenizer.pad_token_id)


def quality(logits: np.ndarray, built: dict) -> dict:
    """Agreement with the fp32 model and micro-F1 of the first `len(logits)` mentions."""
    from modeling_entity_typing import label_ancestors, typing_scores

    labels, reference, gold = built["labels"], built["reference"][: len(logits)], built["gold"][: len(logits)]
    top, reference_top = logits.argmax(1), reference.argmax(1)
    predicted = [[labels[index], *label_ancestors(labels[index])] for index in top]
    difference = np.abs(logits - reference)
    return {
        "mentions": len(logits),
        "max_abs_logit_difference": round(float(difference.max()), 4),
        "max_difference_over_std": round(float(difference.max() / reference.std()), 4),
        "same_top_type_as_fp32": round(float((top == reference_top).mean()), 4),
        "micro_f1": round(100 * typing_scores(predicted, list(gold))["micro_f1"], 2),
    }


def speed(folder: Path, repeats: int, threads: int) -> dict:
    """Native throughput of each graph (batches per round alternate between graphs), as a ratio to the fp32 graph."""
    import onnxruntime
    from common import interleaved_medians, summary

    batches = stored_batches(folder)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {
        graph.stem: onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        for graph in sorted(folder.glob("*.onnx"))
    }

    def runner(session):
        return lambda: [session.run(["logits"], batch) for batch in batches]

    times = interleaved_medians({name: runner(session) for name, session in sessions.items()}, repeats)
    mentions = sum(len(batch["input_ids"]) for batch in batches)
    return {
        name: {
            "mentions_per_second": round(mentions / summary(values)["median"], 1),
            "speedup_vs_fp32": {
                key: round(value, 3)
                for key, value in summary([base / own for base, own in zip(times["fp32"], values)]).items()
            },
        }
        for name, values in times.items()
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, default=None, help="A saved model (default: zero-shot MiniLM).")
    parser.add_argument("--mentions", type=int, default=1024, help="OntoNotes test mentions scored natively.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="Intra-op threads for the native timing.")
    parser.add_argument("--repeats", type=int, default=5, help="Native timing rounds.")
    parser.add_argument("--emulate_cpu", default="EPYC-Rome", help="qemu CPU model; 'none' for native only.")
    parser.add_argument(
        "--emulated_batches", type=int, default=8, help="Batches scored under emulation (the fp32 graph: 1)."
    )
    parser.add_argument("--score", type=Path, default=None, help=argparse.SUPPRESS)  # the emulated child's entry
    parser.add_argument("--tag", default="native", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "int8_cpus.json")
    args = parser.parse_args(argv)
    if args.score is not None:
        score_graphs(args.score, args.tag, args.emulated_batches)
        return {}
    for name in ("mentions", "batch_size", "threads", "repeats", "emulated_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    qemu = shutil.which("qemu-x86_64")
    if args.emulate_cpu != "none" and qemu is None:
        parser.error("--emulate_cpu needs qemu-user (`apt-get install qemu-user`), or pass --emulate_cpu none.")

    from common import machine

    from modeling_entity_typing.export.cpu_inference import cpu_description

    started = time.perf_counter()
    results = {"benchmark": "int8_cpus", "candidates": CANDIDATES, "cpus": {}, "machine": machine()}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        built = build(args, folder)
        score_graphs(folder, "native")
        results["cpus"]["native"] = {**cpu_description(), "how": "this machine"}
        if args.emulate_cpu != "none":
            command = [qemu, "-cpu", args.emulate_cpu, sys.executable, __file__, "--score", str(folder)]
            command += ["--tag", "emulated", "--emulated_batches", str(args.emulated_batches)]
            subprocess.run(command, check=True)
            results["cpus"]["emulated"] = {
                "model": f"qemu-x86_64 -cpu {args.emulate_cpu} (user-mode emulation, qemu {qemu_version(qemu)})",
                **json.loads((folder / "cpu-emulated.json").read_text()),
                "how": "arithmetic of the emulated CPU; no timing",
            }
        results["quality"] = {}
        for tag in results["cpus"]:
            scored = dict(np.load(folder / f"logits-{tag}.npz"))
            results["quality"][tag] = {name: quality(rows, built) for name, rows in scored.items()}
        results["native_speed"] = speed(folder, args.repeats, args.threads)
    results.update(
        mentions=len(built["reference"]),
        num_types=len(built["labels"]),
        batch_size=args.batch_size,
        model_dir=str(args.model_dir or "all-MiniLM-L6-v2, FiveFine encoder type space, zero-shot"),
        total_seconds=round(time.perf_counter() - started, 1),
    )
    from common import report

    report(results, args.output)
    print_table(results)
    return results


def qemu_version(qemu: str) -> str:
    return subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.split("\n")[0].split()[-1]


def print_table(results: dict) -> None:
    tags = list(results["cpus"])
    print("\nsetting | " + " | ".join(f"{tag}: max|d| (/std), same top, micro-F1" for tag in tags) + " | native speed")
    for name in results["quality"][tags[0]]:
        cells = [
            f"{row['max_abs_logit_difference']:.3f} ({row['max_difference_over_std']:.3f}), "
            f"{100 * row['same_top_type_as_fp32']:.2f} %, {row['micro_f1']:.2f}"
            for row in (results["quality"][tag][name] for tag in tags)
        ]
        speedup = results["native_speed"][name]["speedup_vs_fp32"]["median"]
        print(f"{name} | " + " | ".join(cells) + f" | {speedup:.2f}x")


if __name__ == "__main__":
    main()
