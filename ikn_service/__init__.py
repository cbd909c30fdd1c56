"""The service layer: the use cases the JSON API, the web pages, the CLI and the jobs
share, grouped by feature (booking, attendance, ...).

A use case is an async function taking a connection (its unit of work: it opens the
transaction it needs) or the ports it needs, and a command (a frozen dataclass); it
checks the rules, raises the domain's errors (``ikn_core``), and calls the storage
adapter (``ikn_store``). It knows nothing of HTTP or argv. See docs/architecture.md.
"""
