"""Benchmarks: each prints one JSON line of figures, with a ratio to a ceiling
measured in the same run (the machine is shared and noisy)."""
