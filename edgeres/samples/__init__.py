"""Samples: where pictures and frames come from, how they become model inputs, and the sets built from them."""
