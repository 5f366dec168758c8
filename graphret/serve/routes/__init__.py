"""The HTTP routes, one router per concern: the store (health, manifest summary, versions),
search, items (details, thumbnails, images), communities, add, and the web page."""

from graphret.serve.routes import add, communities, items, page, search, store

ROUTERS = (store.router, search.router, items.router, communities.router, add.router, page.router)

__all__ = ["ROUTERS"]
