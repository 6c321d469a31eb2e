"""Web pages of a node (Jinja templates, served by the node's Litestar app): the registration
desk, supervision, protection referrals, headquarters, liaison and administration, in
French, Arabic and English. Controllers stay thin and call the same services as the API.

Wiring (``registry.app.create_app``)::

    from registry.web import web_middleware, web_routes
    ...
    route_handlers=[..., *web_routes(settings)],
    middleware=web_middleware(settings),
"""

from __future__ import annotations

from registry.web.routes import web_middleware, web_routes

__all__ = ["web_middleware", "web_routes"]
