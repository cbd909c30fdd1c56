"""Typed application state."""

import asyncpg
from aiohttp import web

POOL = web.AppKey("pool", asyncpg.Pool)
