"""The `borderpost` command line (entry point ``registry.cli.main:main``).

One module per command group (``server``, ``officers``, ``mrz``, ``receipts``, ``audit``,
``faces``, ``watchlist``; sync's groups are ``sync.cli``), all built on ``helpers``: the
node's settings, running a coroutine, printing JSON. ``main`` assembles the groups.
"""
