"""The symmetric INT8 grid every stage shares: one definition of its limits and of the scale floor."""

from __future__ import annotations

INT8_MAX = 127  # symmetric INT8: amax maps to code 127, zero point 0 (-128 is never used)
U8_ZERO_POINT = 128  # uint8 with zero point 128 and scale s is the same grid as int8 with zero point 0
UINT8_MAX = 255


# Floor on any amax (activation or weight channel): an all-zero tensor still needs a positive scale,
# and zero is exact at any scale. Scales are never below MIN_AMAX / INT8_MAX.
MIN_AMAX = 1e-6


# onnxruntime fuses DequantizeLinear -> Conv/Gemm into QLinearConv/QGemm and then stores the float bias
# as int32 codes of scale (input scale x weight scale); a bias beyond this many codes would overflow.
# Half of int32's range leaves room for the accumulated products added to it.
BIAS_CODE_LIMIT = 2**30

