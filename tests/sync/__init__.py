"""Post-to-national sync (sync/): batches, ingest, quarantine, enrolment and links, reference
data, runners.
"""
