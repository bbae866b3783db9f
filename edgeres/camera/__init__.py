"""Classify raw camera frames as they arrive, with a model that takes them: what `edgeres camera` runs."""
