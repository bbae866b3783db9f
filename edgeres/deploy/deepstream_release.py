"""The DeepStream releases edgeres writes nvinfer configs for, and the TensorRT each one ships.

A release fixes the TensorRT that parses the ONNX (nvinfer builds the engine itself), so it decides
which models that DeepStream can take at all (float16 Q/DQ scales need TensorRT 10) and which version
the calibration table's header names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edgeres.choices import parse_choice


@dataclass(frozen=True)
class TensorRTVersion:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class ReleaseSpec:
    """What one DeepStream release runs on: the TensorRT of its dGPU install and of its JetPack."""

    tensorrt: TensorRTVersion  # x86 dGPU: the TensorRT its install guide and x86 containers pin
    jetpack: str
    jetson_tensorrt: str  # as NVIDIA states it for that JetPack (some give no patch version)


class DeepStreamRelease(enum.Enum):
    """A DeepStream release edgeres knows; the value is how a user names it."""

    DS_6_3 = "6.3"
    DS_7_0 = "7.0"
    DS_7_1 = "7.1"
    DS_8_0 = "8.0"
    DS_9_0 = "9.0"
    DS_9_1 = "9.1"

    @property
    def spec(self) -> ReleaseSpec:
        return RELEASES[self]

    @property
    def tensorrt(self) -> TensorRTVersion:
        return RELEASES[self].tensorrt

    @classmethod
    def parse(cls, text: str) -> DeepStreamRelease:
        return parse_choice(cls, text, "DeepStream release")


# Sources: NVIDIA-AI-IOT/deepstream_dockers, the Dockerfiles and README of each release's commit
# ("update for x86 DS 6.3": libnvinfer 8.5.3, TensorRT 8.5.3.1, l4t-tensorrt:r8.5.2.2, JetPack 5.1.2;
# "Update for DS 7.0 Dockerfiles": libnvinfer 8.6.1.6, l4t-tensorrt:r8.6.2; "update DS 7.1 open source
# dockers": TensorRT 10.3.0 for x86, l4t-tensorrt:r10.3.0, JetPack 6.1; "DS 8.0 OSS dockerfiles":
# TensorRT 10.9.0, JetPack 7.0; "DS 9.0 update": TensorRT 10.14.1, JetPack 7.1); NVIDIA/DeepStream
# README.md "Supported Platforms" (9.0.1: JetPack 7.1 with TensorRT 10.13.x; 9.1: TensorRT 10.16.x on
# x86 and JetPack 7.2) and deepstream_dockers/*/Dockerfile* of 9.1 (libnvinfer / tensorrt-libs 10.16.1.11).
# The DeepStream install guides name the same JetPack per release:
# https://docs.nvidia.com/metropolis/deepstream/<release>/text/DS_Installation.html
RELEASES: dict[DeepStreamRelease, ReleaseSpec] = {
    DeepStreamRelease.DS_6_3: ReleaseSpec(TensorRTVersion(8, 5, 3), "5.1.2", "8.5.2"),
    DeepStreamRelease.DS_7_0: ReleaseSpec(TensorRTVersion(8, 6, 1), "6.0", "8.6.2"),
    DeepStreamRelease.DS_7_1: ReleaseSpec(TensorRTVersion(10, 3, 0), "6.1", "10.3.0"),
    DeepStreamRelease.DS_8_0: ReleaseSpec(TensorRTVersion(10, 9, 0), "7.0", "10.x"),
    DeepStreamRelease.DS_9_0: ReleaseSpec(TensorRTVersion(10, 14, 1), "7.1", "10.13.x"),
    DeepStreamRelease.DS_9_1: ReleaseSpec(TensorRTVersion(10, 16, 1), "7.2", "10.16.1"),
}

NEWEST_RELEASE = max(DeepStreamRelease, key=lambda release: tuple(int(p) for p in release.value.split(".")))


def first_release_with(major: int) -> DeepStreamRelease:
    """The oldest release whose TensorRT has at least this major version."""
    return next(release for release in DeepStreamRelease if release.tensorrt.major >= major)
