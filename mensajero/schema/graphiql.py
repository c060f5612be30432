"""The GraphiQL page at ``/graphql``, fully served by us so it works offline.

Its assets are vendored under ``mensajero/static/graphiql/`` (see the README
there and ``scripts/vendor_graphiql.sh``) and mounted at ``/static``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

STATIC_DIRECTORY = Path(__file__).resolve().parent.parent / "static"
STATIC_URL_PATH = "/static"
_TEMPLATE = Path(__file__).with_name("graphiql.html")
# The browser itself refuses anything from another origin: a proof, on every
# load, that the page needs no internet. Inline code is the page's own script.
GRAPHIQL_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
    ]
)


@cache
def _template() -> str:
    return _TEMPLATE.read_text(encoding="utf-8")


def render_graphiql_page(root_path: str = "") -> str:
    """The page, its asset URLs under the app's mount point (``root_path``)."""
    static = f"{root_path.rstrip('/')}{STATIC_URL_PATH}/graphiql"
    return _template().replace("{{STATIC}}", static)
