"""Biometrics (biometrics/, registry/modalities.py): imaging, quality, the face index, plug-ins
and modalities from registration to sync.
"""
