"""HTTP API of a node: thin Litestar controllers that parse, authorise and call a service."""
