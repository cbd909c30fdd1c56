"""The subcommands of ``ikn``: each module here has ``register(subparsers)``.

Add a module and list it in ``MODULES``; keep server imports inside the command
functions, so that ``ikn sim`` and ``ikn edge-agent`` start on a device without
the server extra (tests/test_layers.py checks it).
"""

from ikn.commands import attendance, bench, demo, edge, fleet, io, services, sim, sync, tls

MODULES = (services, sim, demo, bench, fleet, edge, attendance, io, tls, sync)
