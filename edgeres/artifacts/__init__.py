"""Artifacts and their sidecars: atomic writes, the typed sidecar, artifact kinds, precision, ONNX loading."""
