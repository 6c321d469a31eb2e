"""Web pages of a node (Jinja templates, served by the node's Litestar app): the registration
desk, supervision, protection referrals, headquarters (``registry.hq.pages``), liaison and
administration, in French, Arabic and English. Controllers stay thin and call the same
services as the API.

This package imports nothing on its own: the pages of a slice (``registry.hq.pages``) import
the shell modules here (render, charts, nav, i18n), and ``registry.web.routes`` imports those
pages to wire them, so re-exporting the routes here would make a cycle.

Wiring (``registry.app.create_app``)::

    from registry.web.routes import web_middleware, web_routes
    ...
    route_handlers=[..., *web_routes(settings)],
    middleware=web_middleware(settings),
"""
