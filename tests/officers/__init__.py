"""Officers (registry/officers/): login throttling and the role matrix of every endpoint."""
