"""The camera front-end: resize plan and filters, the fused ONNX graph, and its host reference."""
