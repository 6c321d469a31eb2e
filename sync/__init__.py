"""Borderpost sync: outbox, signed batches, node-to-node push/pull, exchange and reconciliation."""
