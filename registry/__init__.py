"""Borderpost registry: the post/national service (settings, storage, API, CLI)."""
