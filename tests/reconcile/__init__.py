"""Reconciliation of one country's exits with the partner's entries (sync/reconcile/)."""
