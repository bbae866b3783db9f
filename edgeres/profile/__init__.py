"""Measuring artifacts: latency, throughput, layers, memory, end to end; reports and plots."""
