"""The one rule of every writer in the package and its scripts: a path the user named is never silently replaced.

A file that exists, or a folder that holds anything, is refused before anything is written, with the path and the
keyword or flag that allows replacing it. A folder replaced that way is emptied first, so no file of what it held
(another model's config or tokenizer, an earlier export's weights) is left to mix with what is written now.
"""

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

from transformers.utils import logging


logger = logging.get_logger(__name__)

# How a library writer of a folder (keyword `overwrite`) and the script around it allow replacing its contents.
OVERWRITE_OUTPUT_DIR = "`overwrite=True` (`--overwrite_output_dir`)"


def refuse_to_replace(paths: Iterable[str | PathLike], overwrite: bool, allow: str) -> None:
    """Raise `FileExistsError` for the first of `paths` that exists (a file, or a folder that is not empty), unless
    `overwrite`. `allow` says how the caller allows replacing it, e.g. "`overwrite=True` (`--overwrite_output_dir`)".
    """
    if overwrite:
        return
    for path in map(Path, paths):
        if path.is_dir() and any(path.iterdir()):
            raise FileExistsError(
                f"{path} exists and is not empty; nothing was written. Choose a new path, or pass {allow} to "
                "replace what it holds."
            )
        if path.exists() and not path.is_dir():
            raise FileExistsError(
                f"{path} exists; nothing was written. Choose a new path, or pass {allow} to replace it."
            )


def prepare_output_dir(
    output_dir: str | PathLike,
    overwrite: bool,
    allow: str = OVERWRITE_OUTPUT_DIR,
    keep: str | PathLike | None = None,
) -> Path:
    """An empty folder at `output_dir`, created if missing; a non-empty one is refused (`refuse_to_replace`) or, with
    `overwrite`, emptied. `keep` (the folder a model was read from) must survive: an `output_dir` that is it or
    holds it is refused whatever `overwrite` says. Call this before anything is written to `output_dir`."""
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite, allow, keep)
    if output_dir.is_dir() and any(output_dir.iterdir()):
        logger.warning(f"Replacing the contents of {output_dir} ({allow}).")
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


@contextmanager
def staged_output_dir(
    output_dir: str | PathLike,
    overwrite: bool,
    allow: str = OVERWRITE_OUTPUT_DIR,
    keep: str | PathLike | None = None,
) -> Iterator[Path]:
    """An empty staging folder next to `output_dir` to write in; renamed to `output_dir` when the block succeeds.

    Checked as `prepare_output_dir` checks, before the block runs. A failure anywhere in the block removes the staging
    folder, so `output_dir` is as it was: absent, or its old contents. With `overwrite`, the old folder is moved aside
    only once the new one is complete, and deleted after the new one is in place.
    """
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite, allow, keep)
    target = output_dir.resolve()  # a name to rename onto (`.` has none), where a link points
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not `tempfile.mkdtemp`: its folder is private (0o700) and would stay so once renamed into place.
    staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        yield staging
        _move_into_place(staging, target, overwrite, allow)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_output_dir(output_dir: Path, overwrite: bool, allow: str, keep: str | PathLike | None) -> None:
    """Raise unless `output_dir` may be written: a folder or absent, never `keep` or above it, empty or `overwrite`."""
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir} is a file, not a folder; choose a folder path for the output.")
    if keep is not None and Path(keep).is_dir():
        keep = Path(keep).resolve()
        if output_dir.resolve() == keep or output_dir.resolve() in keep.parents:
            raise ValueError(
                f"The output folder {output_dir} is or holds {keep}, the model folder being read; nothing was "
                "written. Choose an output folder outside it."
            )
    refuse_to_replace([output_dir], overwrite, allow)


def _move_into_place(staging: Path, output_dir: Path, overwrite: bool, allow: str) -> None:
    """Rename the complete `staging` folder to `output_dir`; an old non-empty one is kept until the rename is done."""
    refuse_to_replace([output_dir], overwrite, allow)  # again: something may have been written there meanwhile
    if output_dir.is_dir() and not any(output_dir.iterdir()):
        output_dir.rmdir()
    if not output_dir.exists():
        os.replace(staging, output_dir)
        return
    logger.warning(f"Replacing the contents of {output_dir} ({allow}).")
    old = output_dir.with_name(f".{output_dir.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.replace(output_dir, old)
    try:
        os.replace(staging, output_dir)
    except BaseException:
        os.replace(old, output_dir)
        raise
    shutil.rmtree(old)


__all__ = ["prepare_output_dir", "refuse_to_replace", "staged_output_dir"]
