"""The ``ikn`` command: one place that wires each service (see ikn/cli.py)."""
