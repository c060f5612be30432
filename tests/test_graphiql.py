"""GraphiQL at /graphql works offline: every asset is ours and served by the app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest_asyncio

from mensajero.schema.graphiql import STATIC_DIRECTORY, render_graphiql_page

ROOT = Path(__file__).resolve().parent.parent
VENDOR_SCRIPT = ROOT / "scripts" / "vendor_graphiql.sh"
VENDOR_DIRECTORY = STATIC_DIRECTORY / "graphiql"


class AssetCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src"):
                self.assets.append(attributes["src"] or "")
            else:
                self.inline_scripts += 1
        if tag == "link" and attributes.get("href"):
            self.assets.append(attributes["href"] or "")


@pytest_asyncio.fixture
async def page_client(http: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    # The real application (on each backend), with no API key anywhere.
    yield http


async def get_page(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/graphql", headers={"Accept": "text/html"})


async def test_the_page_is_served_without_a_key(page_client: httpx.AsyncClient) -> None:
    response = await get_page(page_client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text


async def test_every_asset_is_a_local_path_the_app_serves(
    page_client: httpx.AsyncClient,
) -> None:
    page = (await get_page(page_client)).text
    collector = AssetCollector()
    collector.feed(page)
    assert len(collector.assets) >= 6, collector.assets
    assert collector.inline_scripts == 1
    for asset in collector.assets:
        parts = urlsplit(asset)
        assert not parts.scheme and not parts.netloc, asset
        assert asset.startswith("/static/graphiql/"), asset
        response = await page_client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0, asset
        expected = "javascript" if asset.endswith(".js") else "css"
        assert expected in response.headers["content-type"], asset


async def test_the_page_names_no_other_host(page_client: httpx.AsyncClient) -> None:
    page = (await get_page(page_client)).text
    assert re.findall(r"https?://[^\s\"'<>]+", page) == []
    assert "//" not in "".join(re.findall(r"(?:src|href)=\"([^\"]*)\"", page))


async def test_the_browser_is_told_to_load_nothing_from_elsewhere(
    page_client: httpx.AsyncClient,
) -> None:
    policy = (await get_page(page_client)).headers["content-security-policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "img-src", "font-src", "connect-src"):
        assert all(
            source in ("'self'", "'unsafe-inline'", "data:") for source in directives[directive]
        ), directive


async def test_the_page_prefills_the_key_header_and_speaks_graphql_ws(
    page_client: httpx.AsyncClient,
) -> None:
    page = (await get_page(page_client)).text
    assert '"Authorization": "Bearer mk_live_..."' in page
    assert "isHeadersEditorEnabled: true" in page
    # Subscriptions go over graphql-ws (graphql-transport-ws) to this same URL,
    # with the Headers pane as the connection_init payload.
    assert "graphqlWs.createClient" in page
    assert "connectionParams: headers" in page
    assert 'url.protocol === "https:" ? "wss:" : "ws:"' in page


def test_vendored_stylesheets_reference_no_remote_url() -> None:
    for stylesheet in VENDOR_DIRECTORY.glob("*.css"):
        text = stylesheet.read_text(encoding="utf-8")
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
        remote = [url for url in urls if not url.startswith("data:")]
        assert remote == [], (stylesheet.name, remote[:3])
        assert "@import" not in text, stylesheet.name


def test_the_readme_records_the_versions_the_script_fetches() -> None:
    script = VENDOR_SCRIPT.read_text(encoding="utf-8")
    readme = (VENDOR_DIRECTORY / "README.md").read_text(encoding="utf-8")
    versions = dict(re.findall(r"^([A-Z_]+)_VERSION=(\S+)$", script, flags=re.MULTILINE))
    assert set(versions) == {"GRAPHIQL", "EXPLORER", "REACT", "GRAPHQL_WS"}
    for version in versions.values():
        assert f"| {version} |" in readme, version
    for name in re.findall(r'"\$DEST/([a-z.-]+\.(?:js|css))"', script):
        assert (VENDOR_DIRECTORY / name).stat().st_size > 0, name


def test_asset_urls_follow_the_mount_point() -> None:
    page = render_graphiql_page("/mensajero/")
    assert 'src="/mensajero/static/graphiql/graphiql.min.js"' in page
    assert "{{" not in page
