"""Helpers shared by the benchmarks: the real UFET data from ../shared/data, batching, interleaved timing."""

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets
import torch

from modeling_entity_typing.data.mention_data import load_mentions, read_label_list


DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ufet_types(data_dir: Path) -> list[str]:
    """UFET's type vocabulary in file order, as `pretrain_ufet.py` reads it."""
    return read_label_list(data_dir / "ufet" / "types.txt", repeats="error")


def ufet_records(path: Path, limit: int | None = None) -> datasets.Dataset:
    """The first `limit` records of a UFET file (all of them: None), as the training scripts read them."""
    records = load_mentions(path, "ufet")
    return records if limit is None else records.select(range(min(limit, len(records))))


def ufet_mentions(path: Path, limit: int | None = None) -> list[tuple[str, int, int]]:
    """The first `limit` mentions of a UFET file as (text, start, end)."""
    records = ufet_records(path, limit)
    return list(zip(records["text"], records["start"], records["end"]))


def pad_batches(encoded: Sequence, batch_size: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    """Templated mentions -> right-padded batches (padded to each batch's longest, as the pipeline does)."""
    batches = []
    for begin in range(0, len(encoded), batch_size):
        chunk = encoded[begin : begin + batch_size]
        length = max(len(e.input_ids) for e in chunk)
        input_ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, e in enumerate(chunk):
            input_ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
            attention_mask[row, : len(e.input_ids)] = 1
        positions = torch.tensor([e.mention_position for e in chunk])
        batches.append({"input_ids": input_ids, "attention_mask": attention_mask, "mention_positions": positions})
    return batches


def interleaved_medians(runs: dict[str, Callable[[], None]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each run `repeats` times, alternating between runs so drift on a shared machine hits all alike."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def report(results: dict, output: Path | None) -> None:
    """Print the results and, with `output`, write them there as JSON."""
    text = json.dumps(results, indent=2)
    print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)


def machine() -> dict[str, object]:
    """Versions, threads and the CPU (model and the flags that pick int8/bf16 kernels): every timing row names it."""
    from modeling_entity_typing.export.cpu_inference import cpu_description

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_description(),
    }
