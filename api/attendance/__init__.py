"""Attendance over HTTP: check-in/out, requests, the recompute job, reports."""
