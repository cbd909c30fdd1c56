"""Bookings, desk places and availability in PostgreSQL."""
