"""National's ingest of its posts' pushes (a vertical slice): verify a post's signed batch,
store its records idempotently in order, and acknowledge the highest contiguous seq held;
what cannot be stored is quarantined, refusals are audited.

- ``decode``: the verified body decoded into its tables' rows; the collector paused while a
  batch is in hand.
- ``validation``: the approved sender; ``receive_batch`` and the column-at-a-time checks
  without the database, giving a ``ReceivedBatch``.
- ``store``: COPY, inserts and officer upserts, reference checks and the quarantine cascade.
- ``apply``: a batch applied after what national holds, in parallel with its predecessor on
  PostgreSQL; a quarantined record applied again.
- ``photos``: photo files, decoded with the post's safe decoder and stored by sha256.
- ``quarantine``: the admin's retry and discard of a quarantined record.
- ``controller``: the ``/api/sync`` endpoints a post pushes to.

Each sender's ingest state and ``BatchGap`` are ``sync.receiver`` (shared with the partner
exchange); quarantine entries and their checks are ``sync.quarantine``.
"""
