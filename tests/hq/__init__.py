"""National headquarters (registry/hq/): schema and partitions, search, timeline, statistics,
stays, roles, query plans.
"""
