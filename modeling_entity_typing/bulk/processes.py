"""The processes of one bulk run: one, or the N that `accelerate launch` starts (data parallel, no scheduler).

Process `r` of `N` types the shards whose number is `r` modulo `N`; every process reads the whole input (reading is
cheap next to typing) and skips the others' rows. Process 0 checks the output folder and chooses the fast path before
the others start (`share`), and joins the shards once all are written. On CPUs, launch with

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N -m modeling_entity_typing predict ...

(`accelerate launch --cpu --num_processes N` starts a single process; it then types everything alone, correctly.)
"""

import logging
import os
from pathlib import Path
from typing import Any, Protocol


logger = logging.getLogger(__name__)


class Processes(Protocol):
    """This process's place among the processes of the run."""

    rank: int
    world: int

    def share(self, value: Any) -> Any:
        """Process 0's `value`, given to every process (the others pass anything)."""
        ...

    def close(self) -> None: ...


class OneProcess:
    """A run in a single process."""

    rank, world = 0, 1

    def share(self, value: Any) -> Any:
        return value

    def close(self) -> None:
        pass


class LaunchedProcesses:
    """The processes `accelerate launch` started, joined in a CPU process group by `accelerate.PartialState`."""

    def __init__(self):
        import torch.distributed
        from accelerate import PartialState

        state = PartialState(cpu=True)
        self.rank, self.world = state.process_index, state.num_processes
        self._distributed = torch.distributed
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world != launched:
            raise RuntimeError(
                f"The launcher started {launched} processes but they did not join one group ({self.world}); on CPUs "
                "launch with `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N ...`."
            )

    def share(self, value: Any) -> Any:
        holder = [value if self.rank == 0 else None]
        self._distributed.broadcast_object_list(holder, src=0)
        return holder[0]

    def close(self) -> None:
        if self._distributed.is_initialized():
            self._distributed.destroy_process_group()


def current_processes() -> Processes:
    """The processes of this run: those of `accelerate launch` / `torchrun` (`WORLD_SIZE` > 1), else this one."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return LaunchedProcesses()
    requested = _requested_processes()
    if requested and requested > 1:
        logger.warning(
            f"`accelerate launch` was asked for {requested} processes but started one (`--cpu` does that): this "
            "process types everything alone. For N processes on CPUs: `ACCELERATE_USE_CPU=1 accelerate launch "
            "--multi_gpu --num_processes N ...`."
        )
    return OneProcess()


def _requested_processes() -> int | None:
    """`--num_processes` of the `accelerate launch` command that started this process (Linux), else None."""
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if not any(Path(arg).name == "accelerate" for arg in argv) or "launch" not in argv:
        return None
    for position, arg in enumerate(argv[:-1]):
        if arg == "--num_processes" and argv[position + 1].isdigit():
            return int(argv[position + 1])
    return None


__all__ = ["LaunchedProcesses", "OneProcess", "Processes", "current_processes"]
