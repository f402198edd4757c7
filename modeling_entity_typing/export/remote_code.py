"""Remote code of the Hub export: the package modules a model needs, as flat sibling files transformers can load.

Remote code has to be flat because `custom_object_save` follows only same-directory relative imports while this
package keeps its configs and pipelines in mapped sub-packages (Hub custom code): the files are derived by following
the package-relative imports of the modules that define the model, config and pipeline classes, and those imports are
rewritten to `from .<flat module> import ...`.
"""

import ast
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedConfig
from transformers.dynamic_module_utils import get_imports, get_relative_imports


PACKAGE = __name__.partition(".")[0]
# Top-level modules remote code may import besides the standard library (`transformers` brings the other two).
REMOTE_CODE_ALLOWED_IMPORTS = frozenset({"torch", "transformers", "huggingface_hub"})
# Flat file name prefixes for modules of sub-packages whose own names do not say their role.
FLAT_NAME_PREFIXES = {f"{PACKAGE}.pipelines": "pipeline_"}
# Config fields that point at remote code; a model saved without the flat files must not keep them.
REMOTE_CODE_FIELDS = ("auto_map", "custom_pipelines")


@dataclass(frozen=True)
class RemoteCodeFile:
    """One flat remote-code module: its file name in the export, the package module it comes from, its source."""

    filename: str
    source_module: str
    text: str


def flatten_remote_code(modules: Iterable[str]) -> list[RemoteCodeFile]:
    """The flat remote-code files for `modules` and every package module they reach through relative imports."""
    queue = list(dict.fromkeys(modules))
    packages = {_top(module) for module in queue}
    if len(packages) > 1:
        raise ValueError(f"Remote code comes from one package; got modules of {sorted(packages)}.")
    done: dict[str, RemoteCodeFile] = {}
    while queue:
        module = queue.pop(0)
        if module in done:
            continue
        if _is_package(module):
            raise ValueError(f"{module!r} is a package; export the module that defines the class instead.")
        path = Path(_spec(module).origin)
        source = path.read_text(encoding="utf-8")
        imports = _relative_imports(module, ast.parse(source, filename=str(path)))
        header = (
            f"# Generated from `{module}` ({_top(module)} {package_version()}) for trust_remote_code loading; "
            "edit the package, not this file.\n"
        )
        text = header + _rewrite(module, source, imports)
        done[module] = RemoteCodeFile(f"{flat_module_name(module)}.py", module, text)
        queue.extend(target for _, grouped in imports for target in grouped)
    _check_unique_filenames(done.values())
    return list(done.values())


def check_remote_code(folder: str | Path, filenames: Iterable[str]) -> None:
    """Raise if a remote-code file imports anything `trust_remote_code` users may lack, or a file not shipped.

    Uses transformers' own `get_imports` (imports inside `try` blocks and `if is_..._available()` are optional and
    not checked) and `get_relative_imports` (the regex that decides which sibling files get downloaded).
    """
    filenames = set(filenames)
    for filename in sorted(filenames):
        path = Path(folder, filename)
        foreign = [
            name
            for name in get_imports(path)
            if name not in sys.stdlib_module_names and name not in REMOTE_CODE_ALLOWED_IMPORTS
        ]
        if foreign:
            hint = (
                f"{PACKAGE} itself cannot be imported by remote code; use relative imports"
                if PACKAGE in foreign
                else "guard optional imports with try/except ImportError, or move the code out of the model's files"
            )
            raise ValueError(
                f"Remote-code file {filename} imports {foreign}; only the standard library and "
                f"{sorted(REMOTE_CODE_ALLOWED_IMPORTS)} are allowed ({hint})."
            )
        missing = sorted(f"{name}.py" for name in get_relative_imports(path) if f"{name}.py" not in filenames)
        if missing:
            raise ValueError(
                f"Remote-code file {filename} relatively imports {missing}, which the export does not contain (a line "
                "starting with `from .x import` in a docstring counts too, as transformers reads them by regex)."
            )


def remove_remote_code_fields(config: PreTrainedConfig) -> None:
    """Drop `auto_map` and `custom_pipelines` from a config loaded from an exported repo, before saving a new model.

    A model fine-tuned from a Hub export keeps both fields; saved without the flat `.py` files they point at, its
    folder would fail in remote-code mode and ask for `trust_remote_code` in `pipeline()` in library mode.
    """
    for name in REMOTE_CODE_FIELDS:
        if hasattr(config, name):
            delattr(config, name)


def flat_module_name(module: str) -> str:
    """`modeling_entity_typing.pipelines.entity_typing` -> `pipeline_entity_typing`; other modules keep their name."""
    parent, _, name = module.rpartition(".")
    prefix = FLAT_NAME_PREFIXES.get(parent, "")
    return name if name.startswith(prefix) else prefix + name


def package_version() -> str:
    """The package's version, stamped into generated files and cards so they say which code produced them."""
    from .. import __version__  # at call time: the package's __init__ has finished by then

    return __version__


# ---------------------------------------------------------------------------------------------------------------------
# Following and rewriting the relative imports


def _spec(module: str) -> importlib.machinery.ModuleSpec:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"Cannot locate the source of module {module!r} for the remote-code export.")
    return spec


def _is_package(module: str) -> bool:
    return _spec(module).submodule_search_locations is not None


def _parse(module: str) -> ast.Module:
    path = Path(_spec(module).origin)
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _top(module: str) -> str:
    return module.partition(".")[0]


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a relative `from ... import` in `module` points at."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    try:
        return importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except ImportError as error:  # more dots than parent packages
        raise ValueError(f"{module} (line {node.lineno}): {error}") from error


def _defining_module(module: str, name: str) -> tuple[str, str]:
    """`(module, name)` that really defines `name` as imported from `module`, following relative re-exports."""
    for node in _parse(module).body:
        if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module is not None:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _defining_module(_resolve_from(module, node), alias.name)
    if _is_package(module):
        raise ValueError(
            f"{name!r} is imported from the package {module!r} but not re-exported from one of its modules; remote "
            f"code needs every name to live in a module file. Import it from the module that defines it."
        )
    return module, name


def _relative_imports(module: str, tree: ast.Module) -> list[tuple[ast.ImportFrom, dict[str, list[str]]]]:
    """Each relative import of `module` with its names grouped by defining module (`{module: ["a", "b as c"]}`)."""
    found, package = [], _top(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_top(alias.name) == package for alias in node.names):
            raise ValueError(
                f"{module} (line {node.lineno}) imports {package} absolutely; remote code cannot import the package. "
                "Use a relative import (`from .module import name`)."
            )
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if node.module and _top(node.module) == package:
                raise ValueError(
                    f"{module} (line {node.lineno}) has `from {node.module} import ...`; remote code cannot import "
                    f"the package. Use a relative import (`from .module import name`)."
                )
            continue
        base = _resolve_from(module, node)
        if node.module is None or any(alias.name == "*" for alias in node.names):
            raise ValueError(
                f"{module} (line {node.lineno}): `from {'.' * node.level}{node.module or ''} import "
                f"{', '.join(alias.name for alias in node.names)}` cannot be flattened; import names from the "
                "module that defines them (`from .module import name`)."
            )
        grouped: dict[str, list[str]] = {}
        for alias in node.names:
            source, original = _defining_module(base, alias.name)
            local = alias.asname or alias.name
            grouped.setdefault(source, []).append(original if local == original else f"{original} as {local}")
        found.append((node, grouped))
    return found


def _rewrite(module: str, source: str, imports: list[tuple[ast.ImportFrom, dict[str, list[str]]]]) -> str:
    """`source` with each relative import replaced by one `from .<flat module> import ...` line per defining module."""
    lines = source.splitlines(keepends=True)
    for node, grouped in sorted(imports, key=lambda item: item[0].lineno, reverse=True):
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        indent = first[: node.col_offset]
        if indent.strip() or last[node.end_col_offset :].split("#")[0].strip():
            raise ValueError(
                f"{module} (line {node.lineno}): a relative import that shares its line with other code cannot be "
                "rewritten for remote code; put it on its own line."
            )
        lines[node.lineno - 1 : node.end_lineno] = [
            f"{indent}from .{flat_module_name(target)} import {', '.join(names)}\n"
            for target, names in grouped.items()
        ]
    return "".join(lines)


def _check_unique_filenames(files: Iterable[RemoteCodeFile]) -> None:
    """Raise if two package modules would land in the same flat file (the export folder has no sub-folders)."""
    sources: dict[str, list[str]] = {}
    for item in files:
        sources.setdefault(item.filename, []).append(item.source_module)
    clashes = {name: modules for name, modules in sources.items() if len(modules) > 1}
    if clashes:
        raise ValueError(f"Modules that would share a flat remote-code file name: {clashes}; rename one of them.")


__all__ = [
    "RemoteCodeFile",
    "check_remote_code",
    "flat_module_name",
    "flatten_remote_code",
    "package_version",
    "remove_remote_code_fields",
]
