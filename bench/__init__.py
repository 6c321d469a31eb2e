"""Benchmarks: each measures Borderpost against a named baseline in the same run."""
