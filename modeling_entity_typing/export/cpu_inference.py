"""A fast CPU path for inference: `optimize_for_cpu(model)` before `pipeline("entity-typing", model=model, ...)`.

```python
>>> model = optimize_for_cpu(AutoModel.from_pretrained("my-typer"))  # bf16 weights and activations, in place
>>> typer = pipeline("entity-typing", model=model, tokenizer=AutoTokenizer.from_pretrained("my-typer"))
```

Modes (`CPU_MODES`), measured on a trained FiveFine model in BENCHMARKS.md, "Fast CPU inference (issue #15)":

* `"bf16"`: the whole model in bfloat16 (`model.to(torch.bfloat16)`), run eagerly. Fast on CPUs with native bf16
  arithmetic (AVX512-BF16 or AMX): 1.77-1.83x fp32's throughput at batch 32 on 2 AVX512-BF16 cores, the same top type
  for 99.3 % of OntoNotes test mentions. Elsewhere bf16 is emulated and usually slower than fp32; a warning says so.
* `"bf16-compiled"`: `"bf16"`, then the encoder (`model.base_model`) compiled with `torch.compile(dynamic=True)`.
  Measured no faster at batch 32 and about 10 % faster at batch 1. Needs a C++ compiler; the first call of each new
  shape class (a batch of 1, larger batches) compiles, which takes seconds to tens of seconds. The compiled encoder
  keeps the checkpoint layout (`save_pretrained` writes the same keys).

Dynamic int8 is not a mode here: torch's `torch.ao.quantization.quantize_dynamic` is deprecated (its removal is
announced), and both it and onnxruntime's dynamic int8 change the top type of many more mentions than bf16 does (see
BENCHMARKS.md). onnxruntime's int8 is available as `export_onnx(..., quantize="int8")`.
"""

import os
import platform
import shutil
from pathlib import Path

import torch
from transformers.utils import logging

from ..contract import EntityTypingModel


logger = logging.get_logger(__name__)

CPU_MODES = {
    "bf16": "bfloat16 weights and activations, eager",
    "bf16-compiled": "bfloat16, encoder compiled with torch.compile",
}


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), without which bf16 is slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


# The CPU features that decide which int8 and bf16 kernels run (Linux /proc/cpuinfo flag names).
_KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")


def cpu_description(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, object]:
    """This CPU's model name and the features its int8/bf16 kernels depend on, for benchmark rows and export records.

    Read from `/proc/cpuinfo` on Linux; elsewhere only `platform.processor()` is known and `flags` is None.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": None}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    present = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", platform.processor() or platform.machine()),
        "flags": [flag for flag in _KERNEL_FLAGS if flag in present],
    }


def _require_cpp_compiler() -> None:
    """torch.compile's CPU backend builds C++ at the first call: fail now, with the fix, when it cannot."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
    if not any(shutil.which(candidate) for candidate in candidates):
        raise RuntimeError(
            f"mode='bf16-compiled' needs a C++ compiler for torch.compile, and none of {candidates} is on PATH: "
            "install one (e.g. `apt-get install g++`) or set $CXX, or use mode='bf16'."
        )


def optimize_for_cpu(model: EntityTypingModel, mode: str = "bf16") -> EntityTypingModel:
    """Prepare `model` for fast CPU inference (`mode` in `CPU_MODES`), in place; returns it, in eval mode."""
    if not isinstance(mode, str) or mode not in CPU_MODES:
        valid = ", ".join(f"{name!r} ({what})" for name, what in CPU_MODES.items())
        raise ValueError(f"Unknown mode {mode!r} for optimize_for_cpu; choose one of {valid}.")
    if not isinstance(model, torch.nn.Module) or not isinstance(model, EntityTypingModel):
        raise TypeError(
            f"optimize_for_cpu takes a model of this package (BertForPhraseTypeTyping, MBertForContrastiveTyping), "
            f"got {type(model).__name__}; load one with AutoModel.from_pretrained(path) after "
            "`import modeling_entity_typing`."
        )
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise ValueError(
            f"optimize_for_cpu prepares a model for CPU inference, and this one is on {device}: call "
            "model.to('cpu') first (on a GPU, load it with dtype=torch.bfloat16 or float16 instead)."
        )
    if mode == "bf16-compiled":
        _require_cpp_compiler()
    if not cpu_supports_bf16():
        logger.warning(
            "This CPU has no native bf16 arithmetic (AVX512-BF16 or AMX): bf16 is emulated here and usually slower "
            "than fp32. Measure before deploying (benchmarks/bench_fast_cpu.py), or keep the model in fp32."
        )
    model.eval()
    model.to(torch.bfloat16)
    if mode == "bf16-compiled":
        # The encoder only: the heads' per-label-set type cache is Python code that would break the graph.
        model.base_model.compile(dynamic=True)
    logger.info(f"optimize_for_cpu: {type(model).__name__} is now {CPU_MODES[mode]}.")
    return model


__all__ = ["CPU_MODES", "cpu_supports_bf16", "optimize_for_cpu"]
