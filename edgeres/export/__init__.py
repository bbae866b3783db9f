"""PyTorch -> ONNX with parity checks against PyTorch, plain or with the camera front-end fused in."""
