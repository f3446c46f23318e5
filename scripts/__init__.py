"""Maintenance scripts (not shipped): ``python -m scripts.record_cassettes``."""
