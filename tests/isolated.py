"""Run Python in a fresh interpreter that cannot import this package: what a Hub user without it has (transformers
runs the repository's remote code instead)."""

import os
import subprocess
import sys
from pathlib import Path


# Prepended to every script: any import of the package fails, from the first line on.
BLOCK_PACKAGE = """
import importlib.abc, sys

class RefusePackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "modeling_entity_typing":
            raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
        return None

sys.meta_path.insert(0, RefusePackage())
"""


def run_without_package(script: str, args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """`python -I -c script args` in `cwd`, offline, with its own transformers module cache under `cache`; fails the
    test with the interpreter's stderr when the script fails."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cache / "modules"), HF_HOME=str(cache / "hf_home"))
    process = subprocess.run(
        [sys.executable, "-I", "-c", BLOCK_PACKAGE + script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    return process
