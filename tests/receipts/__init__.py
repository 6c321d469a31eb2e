"""Signed QR crossing receipts (registry/receipts/)."""
