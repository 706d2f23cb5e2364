"""Causal tests of single units (ablate, clamp), sparse probes, gate saturation."""
