"""The fixtures every test folder may ask for, by name. Each is defined beside the helpers it
belongs to in tests/support/ (no tests there); this file only makes them visible to the
domain folders (tests/crossings/, tests/watchlists/, tests/sync/ ...), whatever their layer.

- tests/support/nodes.py: ``seeded_backend`` (SQLite and PostgreSQL, accounts of every
  role), ``post_node`` (the app in-process), ``live_post`` (over real HTTP),
  ``faces_dir`` and ``astronaut_path``. Under CI=true a missing PostgreSQL, face photo
  folder or Chromium fails the test instead of skipping it.
- tests/support/live.py: ``served``; tests/support/web_client.py: ``web``, a browser-like
  client of a node's pages; tests/support/servers.py: ``migrated_env`` (a migrated post
  for ``borderpost`` subprocesses).
- tests/support/hq_node.py: ``seeded_national`` (prepared once a session per backend) and
  ``national_node``, the seeded national node of the HQ tests.
- tests/support/ingest.py: ``national`` and ``national_url``, national in-process on
  PostgreSQL for the ingest tests; a module may define its own ``national``.
- tests/support/watchlists.py: ``watch_node``, a post with the watchlist routes.
- tests/support/countries.py: ``countries``, two nationals and a post each under one
  signed agreement.
- tests/support/browser.py: ``playwright``, ``browser`` (Debian's Chromium), ``post`` (a
  served post with an account of every role) and ``served_national`` (a served national
  with an agreement in force and a known dataset), module-scoped; a module may define its
  own ``post``.
"""

from tests.support.browser import browser, playwright, post, served_national
from tests.support.countries import countries
from tests.support.hq_node import national_node, seeded_national
from tests.support.ingest import national, national_url
from tests.support.live import served
from tests.support.nodes import astronaut_path, faces_dir, live_post, post_node, seeded_backend
from tests.support.servers import migrated_env
from tests.support.watchlists import watch_node
from tests.support.web_client import web

__all__ = [
    "astronaut_path",
    "browser",
    "countries",
    "faces_dir",
    "live_post",
    "migrated_env",
    "national",
    "national_node",
    "national_url",
    "playwright",
    "post",
    "post_node",
    "seeded_backend",
    "seeded_national",
    "served",
    "served_national",
    "watch_node",
    "web",
]
