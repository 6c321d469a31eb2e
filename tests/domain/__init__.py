"""The pure domain helpers below every slice: MRZ parse and build, names, stays, clean text,
vocabularies.
"""
