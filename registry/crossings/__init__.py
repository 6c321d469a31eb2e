"""The crossings slice: registering a crossing at a post, reading and correcting it, and the
searches at a post.

- ``schemas``: the registration and correction requests;
- ``registration``: validation and integrity checks of one registration, and stay rules
  applied to a traveller's crossings;
- ``registration_writer``: the group commit that writes registrations in batches;
- ``records``: crossing views, audited reads and superseding corrections;
- ``search``: by document, by name and date of birth, by time range, a traveller's history,
  open stays and overstays;
- ``controller`` and ``search_controller``: the HTTP endpoints.
"""
