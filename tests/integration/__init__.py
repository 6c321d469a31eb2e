"""Borderpost tests."""
