"""Per-token rate limit on writes (POST, PUT, PATCH, DELETE): a token bucket per
authenticated principal (an API token's name, an OIDC person), in this API process.

A bucket holds up to ``burst`` writes and refills at ``rate`` a second; a write that
finds it empty is 429 ``rate-limited`` with ``Retry-After``. The limits are per process:
behind a load balancer over N API processes a token may write up to N times as much.
Reads are not limited (they are cheap and cached nowhere a flood could fill).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from api.auth import PRINCIPAL
from api.problems import Handler, Problem
from ikn_core.settings import GuardSettings

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MOST_BUCKETS = 100_000  # past it, buckets that have filled up again are forgotten


@dataclass(slots=True)
class _Bucket:
    level: float  # writes it may make now
    at: float  # when ``level`` was last brought up to date (monotonic seconds)


class Buckets:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Takes one write from ``key``'s bucket: 0.0 when it had one, else the seconds
        until it will have one (nothing taken)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MOST_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.level = min(self.burst, bucket.level + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.level >= 1.0:
            bucket.level -= 1.0
            return 0.0
        return (1.0 - bucket.level) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [
            k for k, b in self._buckets.items() if b.level + (now - b.at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def middleware(guard: GuardSettings) -> Middleware:
    """The rate-limiting middleware; it runs after ``auth_middleware`` has named the
    principal (a public route or a refused request has none and is not limited)."""
    buckets = Buckets(guard.write_rate, guard.write_burst)

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if request.method in WRITES and principal is not None:
            wait_s = buckets.take(principal.name)
            if wait_s > 0:
                raise Problem(
                    429,
                    "rate-limited",
                    "Too many writes with this token",
                    f"at most {guard.write_burst} at once and {guard.write_rate:g} a second "
                    "per token; try again later",
                    retry_after_s=max(1, math.ceil(wait_s)),
                )
        return await handler(request)

    return rate_limit
