"""The project's exceptions: library code raises these, only the CLI prints them."""

import os


class EdgeresError(Exception):
    """Base class; the message names the offending file, tensor or value."""


class UserInputError(EdgeresError):
    """Bad input from the user: a missing file, a malformed option, a wrong size."""


class CheckpointError(EdgeresError):
    """A checkpoint that cannot be loaded into the requested model."""


class ClassCountMismatch(CheckpointError):
    """A checkpoint with another number of classes than the model; `found` is the checkpoint's."""

    def __init__(self, found: int, message: str) -> None:
        super().__init__(message)
        self.found = found


class ParityError(EdgeresError):
    """Two backends disagree beyond the stated tolerance."""


class FidelityError(EdgeresError):
    """A quantized model fails the requested fidelity gate."""


class BackendUnavailableError(EdgeresError):
    """An optional backend (TensorRT, CUDA) is not installed or has no device."""


class ResourceLimitError(UserInputError):
    """A request whose estimated memory exceeds what this machine has available."""


def available_memory_bytes() -> int:
    """Memory available to a new allocation: /proc/meminfo MemAvailable, else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return 1 << 62  # unknown: refuse nothing


def _human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


# Estimates below this are not checked: frame conversion asks per frame, and reading /proc/meminfo for a
# frame that cannot matter would cost more than it saves.
ALWAYS_FITS_BYTES = 1 << 28


def check_fits_in_memory(estimate_bytes: int, what: str) -> None:
    """Refuse `what` up front when its estimated memory exceeds the available memory (one message, both numbers)."""
    if estimate_bytes < ALWAYS_FITS_BYTES:
        return
    available = available_memory_bytes()
    if estimate_bytes > available:
        raise ResourceLimitError(
            f"{what} needs about {_human_bytes(estimate_bytes)} of memory, {_human_bytes(available)} is available"
        )
