"""FP32 ONNX -> INT8 Q/DQ (TensorRT) + U8S8 twin (onnxruntime) or FP16, calibrated and checked for fidelity."""
