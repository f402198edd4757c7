"""Helpers shared by the benchmarks: the real UFET data from ../shared/data, batching, interleaved timing."""

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ufet_types(data_dir: Path) -> list[str]:
    return (data_dir / "ufet" / "types.txt").read_text().split()


def ufet_mentions(path: Path, limit: int | None = None) -> list[tuple[str, int, int]]:
    """UFET JSON lines as (text, start, end): tokens joined by spaces, the mention between the two contexts."""
    mentions = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                left = " ".join(record["left_context_token"])
                mention = record["mention_span"]
                right = " ".join(record["right_context_token"])
            except (json.JSONDecodeError, KeyError) as error:
                raise ValueError(f"{path}:{line_number}: not a UFET record ({error!r})") from error
            start = len(left) + 1 if left else 0
            text = (left + " " if left else "") + mention + (" " + right if right else "")
            mentions.append((text, start, start + len(mention)))
            if limit is not None and len(mentions) == limit:
                break
    return mentions


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
