"""Hostile input at every entry point: bad and adversarial requests, clean text."""
