"""Leaving the package: a Hub-ready folder with remote code and model card (`hub`), and ONNX (`onnx_export`)."""
