"""Watchlists (registry/watchlists/): entries, CSV, the matcher, alerts at registration."""
