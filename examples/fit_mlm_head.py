"""Give a BERT encoder that ships without an MLM head (e.g. all-MiniLM-L6-v2) a fitted one, for FiveFine.

The encoder stays frozen: its hidden states at masked positions are computed once, then the head is fitted on them
for a few epochs. The output folder is a standard `BertForMaskedLM` checkpoint with its tokenizer and
`mlm_head_report.json` (held-out masked-token accuracy before and after); pass it as `--model_name_or_path` to
`finetune_fet.py` or `pretrain_ufet.py`.

    # sentences: plain text files (one per line) and/or mention files in any format the package reads
    python examples/fit_mlm_head.py --train_file corpus.txt ufet/train.json --output_dir outputs/minilm-mlm

`finetune_fet.py` does this by itself (once, cached) when its encoder has no MLM head.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from modeling_entity_typing.fivefine.mlm_head import build_encoder_with_mlm_head, read_sentences
from modeling_entity_typing.training import default_encoder
from modeling_entity_typing.training.training_args import SEED_RANGE, Range


def build_parser() -> argparse.ArgumentParser:
    """The arguments; each number's `type=` refuses a value outside its range (`Range.parser`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=None, help="A BERT encoder; default: the bundled MiniLM.")
    parser.add_argument("--train_file", nargs="+", required=True, help="Unlabelled sentences (.txt or mention files).")
    parser.add_argument("--output_dir", required=True, help="New folder for the encoder with its fitted head.")
    parser.add_argument("--epochs", type=Range(ge=1).parser(int), default=8)
    parser.add_argument("--learning_rate", type=Range(gt=0).parser(float), default=1e-2)
    parser.add_argument(
        "--maskings",
        type=Range(ge=1).parser(int),
        default=None,
        help="Masked copies of each sentence (default: enough for ~10k targets).",
    )
    # 0 still masks one token per sentence (at least one target each); 1 masks every token.
    parser.add_argument("--mlm_probability", type=Range(ge=0, le=1).parser(float), default=0.15)
    parser.add_argument("--seed", type=SEED_RANGE.parser(int), default=0)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, checked before any sentence is read or folder written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for path in args.train_file:
        if not Path(path).is_file():
            parser.error(f"--train_file: no file at {path}")
    if Path(args.output_dir).exists():
        parser.error(f"--output_dir {args.output_dir} exists; an encoder folder is never overwritten.")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    sentences = read_sentences(args.train_file)
    report = build_encoder_with_mlm_head(
        args.model_name_or_path or default_encoder(),
        sentences,
        args.output_dir,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        maskings=args.maskings,
        mlm_probability=args.mlm_probability,
        seed=args.seed,
    )
    print(json.dumps(report.to_dict(), indent=2))
    print(f"Saved to {args.output_dir}")
    return report.to_dict()


if __name__ == "__main__":
    main(sys.argv[1:])
