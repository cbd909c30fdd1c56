"""Benchmarks: each prints one JSON line of figures, with a ratio to a ceiling
measured in the same run (the machine is shared and noisy); ``--results DIR`` writes
it to a result file too, from which ``ikn bench report`` writes docs/benchmarks.md's
Latest table (results.py)."""
