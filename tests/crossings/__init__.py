"""Registering crossings (registry/crossings/): entries and exits, idempotency, group commit,
crash durability, searches, stay rules, name keys.
"""
