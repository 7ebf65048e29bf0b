"""/docs and /redoc load nothing from another host, and everything they load is served.

The rendering itself (Swagger UI drawing the operations with no network) is checked
in a real browser by scripts/docs-check."""

import re
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import UserHandle

# What each kind of asset must be served as (a browser refuses a script served as
# text/plain when nosniff is on, and a stylesheet of the wrong type is ignored).
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".svg": ("image/svg+xml",),
}


class _References(HTMLParser):
    """Every URL a page makes the browser load: script src, link href, redoc spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "redoc": "spec-url"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # Swagger UI is given its document in the inline script: `url: '/openapi.json'`.
    parser.urls += re.findall(r"\burl: '([^']+)'", html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
class TestDocsPages:
    async def test_no_external_host(self, client: httpx.AsyncClient, page: str) -> None:
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "http://" not in response.text
        assert "https://" not in response.text
        assert "//" not in "".join(_references(response.text))  # no protocol-relative URL
        assert "fonts.googleapis" not in response.text

    async def test_every_asset_is_served(self, client: httpx.AsyncClient, page: str) -> None:
        urls = _references((await client.get(page)).text)
        assets = [url for url in urls if url != "/openapi.json"]
        assert "/openapi.json" in urls
        assert len(assets) >= 2, urls  # a script and a favicon at least
        for url in assets:
            assert url.startswith("/"), url
            response = await client.get(url)
            assert response.status_code == 200, url
            suffix = url[url.rindex(".") :]
            content_type = response.headers["content-type"].split(";")[0]
            assert content_type in CONTENT_TYPES[suffix], (url, content_type)
            assert len(response.content) > 100, url

    async def test_behind_a_prefix(self, app: FastAPI, page: str) -> None:
        """Behind a proxy that strips /todo (ASGI root_path), every URL keeps it."""
        transport = httpx.ASGITransport(app=app, root_path="/todo")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/todo" + page)
            assert response.status_code == 200
            urls = _references(response.text)
            assert urls
            for url in urls:
                assert url.startswith("/todo/"), url
                assert (await client.get(url)).status_code == 200, url


async def test_swagger_ui_keeps_the_authorization(client: httpx.AsyncClient) -> None:
    html = (await client.get("/docs")).text
    assert '"persistAuthorization": true' in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "https://" not in redirect.text


async def test_redoc_logo_is_served(client: httpx.AsyncClient) -> None:
    """redoc.standalone.js (as patched by the wheel) asks for <page path>/logo-mini.svg."""
    script = await client.get("/docs/assets/redoc/redoc.standalone.js")
    assert 'window.location.pathname+"/logo-mini.svg"' in script.text
    logo = await client.get("/redoc/logo-mini.svg")
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"


async def test_authorize_flow_logs_in(client: httpx.AsyncClient, user: UserHandle) -> None:
    """What the Authorize button does: the password flow's tokenUrl from the document,
    a form post, then the bearer token on a protected route."""
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    (flow,) = [s["flows"]["password"] for s in schemes.values() if s["type"] == "oauth2"]
    token = await client.post(
        flow["tokenUrl"], data={"username": user.email, "password": user.password}
    )
    assert token.status_code == 200, token.text
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == user.email
