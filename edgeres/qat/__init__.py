"""Quantization-aware training on the exported graph itself, with edgeres's own Q/DQ placement."""
