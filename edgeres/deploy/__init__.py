"""Deployment configs for a built model: DeepStream nvinfer and Triton."""
