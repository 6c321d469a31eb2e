"""What the tests share: factories, seeded and served nodes, page helpers and fixtures; no tests."""
