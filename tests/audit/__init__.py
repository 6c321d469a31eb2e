"""The audit log that cannot be cut short: checkpoints at a post and at national."""
