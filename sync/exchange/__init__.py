"""Bilateral exchange between two national nodes under a signed data-sharing agreement.

- ``model``: the agreement's structure (parties, paired posts, what may leave) and its file;
- ``parsing``: reading an agreement file (TOML decoded into msgspec Structs, then checked);
- ``signing``: Ed25519 signatures of the canonical content, and whether it is in force;
- ``pseudonyms``: each node's own blinding key (X25519 for records, ristretto255 for hits)
  and pseudonymous ids: nothing the partner holds can be reversed offline;
- ``enforcement``: ``filter_record``, the one function through which a record leaves;
- ``report``: what an agreement shares, and ``borderpost agreement check``;
- ``service``: send and receive filtered batches;
- ``lifecycle``: backfill when a version comes into force, revocation, erasure, retention;
- ``hits``: hit/no-hit queries (an oblivious PRF) and the release of details on request;
- ``liaison``: notes and resolutions of discrepancy cases, shared with the partner;
- ``client``: the national node's push to the partner and signed partner calls;
- ``controller``: the partner's HTTP endpoints; ``liaison_controller``: the liaison's.
"""
