"""The HTTP API (aiohttp): ``/api/v1``, bearer tokens, errors as application/problem+json."""
