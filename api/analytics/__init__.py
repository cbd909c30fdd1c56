"""Analytics and occupancy over HTTP."""
