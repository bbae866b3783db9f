"""The project's exceptions: library code raises these, only the CLI prints them."""


class EdgeresError(Exception):
    """Base class; the message names the offending file, tensor or value."""


class UserInputError(EdgeresError):
    """Bad input from the user: a missing file, a malformed option, a wrong size."""


class CheckpointError(EdgeresError):
    """A checkpoint that cannot be loaded into the requested model."""


class ParityError(EdgeresError):
    """Two backends disagree beyond the stated tolerance."""


class FidelityError(EdgeresError):
    """A quantized model fails the requested fidelity gate."""


class BackendUnavailableError(EdgeresError):
    """An optional backend (TensorRT, CUDA) is not installed or has no device."""
