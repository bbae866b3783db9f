"""Running an artifact: one Runner interface for onnxruntime, OpenVINO and TensorRT, inputs, class names (no torch)."""
