"""edgeres: ResNet50 for NVIDIA edge hardware, from PyTorch to a TensorRT engine."""

__version__ = "0.1.0"
