"""Calibration cache: per-tensor ranges keyed by what produced them, and TensorRT's text calibration table.

The JSON cache records the sha256 of the model, a fingerprint of the calibration data (files, seed, size,
encoding), the algorithm and its options, the tensor selection and the edgeres version. It is reused
only when every one of these matches; otherwise it is refused with a message naming what changed, so a
stale cache can never silently calibrate a different model (a known trap with TensorRT's own caches).

The TensorRT table (`TRT-<version>-EntropyCalibration2`, then `tensor: <scale>` lines, the scale being the
big-endian hex of the float32 amax / 127) is what DeepStream's `int8-calib-file` and TensorRT's implicit
INT8 calibrators read. The header always names EntropyCalibration2 because that is the calibrator those
readers instantiate; the scales themselves come from whichever algorithm was chosen.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from edgeres import __version__
from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from edgeres.errors import UserInputError
from edgeres.quantize.grid import INT8_MAX
from edgeres.quantize.histogram import CalibAlgo, CalibOptions

CACHE_SCHEMA = 2  # 2: the cache carries a digest of its own contents
TRT_TABLE_ALGORITHM = "EntropyCalibration2"


# Version named in the table header (trt_version_number); TensorRT skips a table whose header does not match
# it. 10.3.0 is the TensorRT of JetPack 6.1/6.2 and DeepStream 7.1: the oldest that parses the default INT8
# model (FP16 Q/DQ scales need TensorRT 10).
DEFAULT_TRT_VERSION = "10.3.0"

FIELD_NAMES = {
    "model_sha256": "model",
    "data_sha256": "calibration data",
    "algorithm": "algorithm",
    "options": "algorithm options",
    "tensors_sha256": "tensor selection",
    "tool_version": "edgeres version",
}


class StaleCacheError(UserInputError):
    """A calibration cache made from something other than the current model/data/settings."""


@dataclass(frozen=True)
class CacheKey:
    """Everything that determines the ranges; a cache is valid only for an identical key."""

    model_sha256: str
    data_sha256: str
    algorithm: str
    options: str  # canonical JSON of CalibOptions
    tensors_sha256: str
    tool_version: str = __version__

    def changed(self, other: CacheKey) -> list[str]:
        """Human names of the fields that differ, in a fixed order."""
        return [FIELD_NAMES[f.name] for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def tensors_digest(tensors: list[str] | None) -> str:
    """sha256 of the requested tensor names; 'default' when the calibrator chooses them."""
    if tensors is None:
        return "default"
    return hashlib.sha256("\n".join(tensors).encode()).hexdigest()


def cache_key(
    model_path: Path,
    data_sha256: str,
    algo: CalibAlgo,
    options: CalibOptions | None = None,
    tensors: list[str] | None = None,
) -> CacheKey:
    return CacheKey(
        model_sha256=sha256_file(Path(model_path)),
        data_sha256=data_sha256,
        algorithm=algo.value,
        options=json.dumps(asdict(options or CalibOptions()), sort_keys=True),
        tensors_sha256=tensors_digest(tensors),
    )


@dataclass(frozen=True)
class CalibCache:
    key: CacheKey
    ranges: dict[str, float]  # tensor name -> symmetric amax
    samples: int


def cache_digest(key: dict[str, object], ranges: dict[str, float], samples: int) -> str:
    """sha256 over the canonical JSON of key, ranges and sample count: an edited cache no longer matches it."""
    values = {str(name): float(amax) for name, amax in ranges.items()}
    canonical = json.dumps({"key": key, "ranges": values, "samples": samples}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_cache(path: Path, cache: CalibCache) -> None:
    """Atomically write the JSON cache (amax and the INT8 scale amax/127 of every tensor, and its own digest)."""
    key = asdict(cache.key)
    ranges = {str(name): float(amax) for name, amax in cache.ranges.items()}
    write_json_atomic(
        Path(path),
        {
            "schema": CACHE_SCHEMA,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "key": key,
            "samples": cache.samples,
            "tensors": {name: {"amax": amax, "scale": amax / INT8_MAX} for name, amax in ranges.items()},
            "digest": cache_digest(key, ranges, cache.samples),
        },
    )


def _checked_ranges(path: Path, tensors: dict[str, dict[str, object]]) -> dict[str, float]:
    """Tensor -> amax, each finite and positive with its scale amax/127; anything else names the tensor."""
    ranges: dict[str, float] = {}
    for name, entry in tensors.items():
        amax, scale = float(entry["amax"]), float(entry["scale"])  # type: ignore[arg-type]
        if not (math.isfinite(amax) and amax > 0):
            raise UserInputError(f"{path}: tensor '{name}' has range {amax}; a range must be finite and positive")
        if not math.isclose(scale, amax / INT8_MAX, rel_tol=1e-6):
            raise UserInputError(f"{path}: tensor '{name}' scale {scale} is not its amax {amax} / {INT8_MAX}")
        ranges[str(name)] = amax
    return ranges


def read_cache(path: Path) -> CalibCache:
    """Parse a cache written by `write_cache`; malformed files are a one-line UserInputError."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        if payload.get("schema") != CACHE_SCHEMA:
            raise UserInputError(
                f"{path}: calibration cache schema {payload.get('schema')!r}, expected {CACHE_SCHEMA} "
                "(written by another edgeres version); delete it to recalibrate"
            )
        key = CacheKey(**payload["key"])
        ranges = _checked_ranges(path, payload["tensors"])
        samples = int(payload["samples"])
        if payload.get("digest") != cache_digest(asdict(key), ranges, samples):
            raise UserInputError(
                f"{path}: calibration cache contents do not match its digest (edited or damaged); "
                "delete it to recalibrate"
            )
        return CalibCache(key, ranges, samples)
    except UserInputError:
        raise
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read calibration cache ({exc.strerror})") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserInputError(f"{path}: not a valid edgeres calibration cache ({type(exc).__name__}: {exc})") from exc


def load_matching(path: Path, key: CacheKey) -> CalibCache | None:
    """The cached ranges if `path` exists and was made with exactly `key`; None if there is no cache.

    Raises StaleCacheError naming every field that changed, so the user decides (delete or recalibrate).
    """
    path = Path(path)
    if not path.exists():
        return None
    cache = read_cache(path)
    changed = [attr for attr in FIELD_NAMES if getattr(cache.key, attr) != getattr(key, attr)]
    if changed:
        details = ", ".join(
            f"{FIELD_NAMES[a]} ({_short(getattr(cache.key, a))} -> {_short(getattr(key, a))})" for a in changed
        )
        raise StaleCacheError(f"{path}: calibration cache is stale, changed: {details}; delete it to recalibrate")
    return cache


def _short(value: str) -> str:
    """Hashes shortened for messages; other values as they are."""
    return value[:12] if len(value) == 64 else value


def trt_version_number(version: str) -> int:
    """'8.6.2' -> 8602, '10.3.0' -> 100300: NV_TENSORRT_VERSION as TensorRT writes it into table headers,
    major*1000 + minor*100 + patch up to TensorRT 8 (NvInferRuntimeCommon.h), major*10000 + minor*100 +
    patch from TensorRT 10 (NvInferRuntimeBase.h, NV_TENSORRT_VERSION_INT)."""
    try:
        parts = [int(p) for p in version.split(".")[:3]]
    except ValueError as exc:
        raise UserInputError(f"TensorRT version '{version}' is not MAJOR.MINOR.PATCH") from exc
    major, minor, patch = [*parts, 0, 0][:3]
    major_scale = 10000 if major >= 10 else 1000
    if not (0 <= minor < major_scale // 100 and 0 <= patch < 100 and major >= 0):
        raise UserInputError(f"TensorRT version '{version}' does not fit the calibration table header")
    return major * major_scale + minor * 100 + patch


def scale_hex(amax: float) -> str:
    """The table's encoding of a tensor: hex of the big-endian float32 bits of amax / 127."""
    return struct.pack(">f", amax / INT8_MAX).hex()


def write_trt_table(path: Path, ranges: dict[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> None:
    """TensorRT text calibration table for DeepStream `int8-calib-file` / implicit-calibration TensorRT."""
    lines = [f"TRT-{trt_version_number(trt_version)}-{TRT_TABLE_ALGORITHM}"]
    for name, amax in ranges.items():
        if ":" in name or "\n" in name:
            raise UserInputError(f"tensor name {name!r} cannot be written to a TensorRT calibration table")
        lines.append(f"{name}: {scale_hex(amax)}")
    write_bytes_atomic(Path(path), ("\n".join(lines) + "\n").encode())


def read_trt_table(path: Path) -> tuple[str, dict[str, float]]:
    """(header, tensor -> scale) of a TensorRT text calibration table."""
    text = Path(path).read_text().splitlines()
    if not text or not text[0].startswith("TRT-"):
        raise UserInputError(f"{path}: not a TensorRT calibration table (no TRT-... header)")
    scales: dict[str, float] = {}
    for number, line in enumerate(text[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        try:
            scales[name] = struct.unpack(">f", bytes.fromhex(value.strip().zfill(8)))[0]
        except ValueError as exc:
            raise UserInputError(f"{path}: line {number} is not 'tensor: hex-scale'") from exc
        if not sep:
            raise UserInputError(f"{path}: line {number} is not 'tensor: hex-scale'")
    return text[0], scales
