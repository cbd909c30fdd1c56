"""Attendance in PostgreSQL: signals, daily records, requests, badges."""
