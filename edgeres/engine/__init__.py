"""ONNX -> TensorRT engine, what an engine is bound to, and the CUDA calls the runtime needs."""
