"""`edgeres build`: the chain from a source model to quantized models, fidelity report and engine."""
