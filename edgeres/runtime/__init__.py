"""Running an artifact: one Runner interface for onnxruntime and TensorRT, inputs, class names (no torch)."""
