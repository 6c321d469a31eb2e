"""Bilateral exchange between two national nodes under a signed data-sharing agreement.

- ``service``: send and receive filtered batches, retention purge, revocation;
- ``hits``: hit/no-hit queries and the release of details on request;
- ``liaison``: reconciliation runs and discrepancy cases with notes and resolutions;
- ``client``: the national node's push to the partner and signed partner calls;
- ``controller``: the partner and liaison HTTP endpoints.
"""
