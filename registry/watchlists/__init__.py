"""Watchlists, one room: versioned entries listing persons and documents, the in-memory matcher
run at every registration, the alerts it raises and their human adjudication, what each role may
see of an alert, and CSV import/export.

- ``schemas``: the API request Structs and the text rules of entry fields.
- ``content``: what a version says (``EntryContent``), entry ids, content checks, face templates.
- ``policy``: who may manage which entries, how much of an alert each role sees, who adjudicates.
- ``matcher``: ``WatchlistMatcher``, held in memory by the node and matched without I/O.
- ``service``: versioned entry CRUD; every write and read audited, every write in the outbox.
- ``alerts``: the alerts of a registration, their views, open alerts, adjudication, figures.
- ``csv_files`` (and ``csv_rows``, its row checks): import and export of watchlist CSV files.
- ``controller``: the ``/api/alerts`` and ``/api/watchlist/entries`` endpoints (Litestar).
- ``cli``: ``borderpost watchlist import|export``.

Import from the module itself: this package re-exports nothing, so the node, which needs only
the matcher, does not load the rest.
"""
