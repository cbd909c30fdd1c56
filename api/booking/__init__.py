"""Desk booking over HTTP: bookings, series, batches, availability, places, zones, and the no-
show release job."""
