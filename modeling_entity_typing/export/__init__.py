"""Leaving the package: a Hub-ready folder (weights, flat remote code, model card) and its upload.

`hub` puts the folder together and uploads it, `remote_code` flattens the package modules a model needs into sibling
files, `model_card` renders the card from the template shipped as package data. ONNX export lives in `onnx_export`,
imported on its own since it needs the `onnx` extra at run time.
"""

from .hub import HubUploadError, export_for_hub, push_folder_to_hub
from .model_card import CARD_TEMPLATE, build_card_data, read_results, render_model_card
from .remote_code import RemoteCodeFile, check_remote_code, flatten_remote_code, remove_remote_code_fields


__all__ = [
    "CARD_TEMPLATE",
    "HubUploadError",
    "RemoteCodeFile",
    "build_card_data",
    "check_remote_code",
    "export_for_hub",
    "flatten_remote_code",
    "push_folder_to_hub",
    "read_results",
    "remove_remote_code_fields",
    "render_model_card",
]
