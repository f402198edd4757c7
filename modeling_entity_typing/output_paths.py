"""The one rule of every writer in the package and its scripts: a path the user named is never silently replaced.

A file that exists, or a folder that holds anything, is refused before anything is written, with the path and the
keyword or flag that allows replacing it. A folder replaced that way is emptied first, so no file of what it held
(another model's config or tokenizer, an earlier export's weights) is left to mix with what is written now.
"""

import shutil
from collections.abc import Iterable
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
    if output_dir.is_dir() and any(output_dir.iterdir()):
        logger.warning(f"Replacing the contents of {output_dir} ({allow}).")
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


__all__ = ["prepare_output_dir", "refuse_to_replace"]
