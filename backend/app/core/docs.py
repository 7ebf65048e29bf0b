"""/docs (Swagger UI) and /redoc served entirely by the app: no CDN, no Google fonts.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr and their favicon from
fastapi.tiangolo.com, so offline (an air-gapped machine, a train, this CI) /docs is a
blank page (shared PITFALLS). The assets come from the `fastapi-standalone-docs` wheel
(Swagger UI 5.33.1 and ReDoc 2.5.4 as published on npm, each with its licence, and
FastAPI's favicon), served by a StaticFiles mount. Only its files are used: its
`StandaloneDocs` helper replaces `fastapi.applications.get_swagger_ui_html` for the
whole process. `swagger-ui-bundle` 1.1.0 (its last release, 2023) ships Swagger UI
4.15.5, which does not render OpenAPI 3.1, the version FastAPI writes.

`scripts/docs-check` renders /docs in headless Chromium with every host but the app's
unresolvable and checks the operations appear.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# The package is only a source of files (an ordinary directory in site-packages).
STATIC_DIR = Path(str(files("fastapi_standalone_docs") / "static"))

# Swagger UI options on top of FastAPI's defaults (deep links, extensions shown):
# the token obtained with Authorize (OAuth2 password flow on /api/v1/auth/token, see
# app/auth/dependencies.py) survives a reload of the page.
SWAGGER_UI_PARAMETERS = {"persistAuthorization": True}


def add_docs_routes(app: FastAPI) -> None:
    """Create the app with `docs_url=None, redoc_url=None`, then call this."""
    assert app.openapi_url is not None

    def root_path(request: Request) -> str:
        # Behind a proxy that strips a prefix, every URL the page loads needs it back.
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root_path(request)
        return get_swagger_ui_html(
            openapi_url=prefix + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{prefix}{ASSETS_URL}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{ASSETS_URL}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{ASSETS_URL}/fastapi/favicon.png",
            oauth2_redirect_url=prefix + OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    async def swagger_ui_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        prefix = root_path(request)
        return get_redoc_html(
            openapi_url=prefix + str(app.openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{prefix}{ASSETS_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{prefix}{ASSETS_URL}/fastapi/favicon.png",
            with_google_fonts=False,
        )

    async def redoc_logo(_: Request) -> FileResponse:
        # The wheel's redoc.standalone.js asks for its logo at the page's own path plus
        # "/logo-mini.svg" (instead of Redocly's CDN).
        return FileResponse(STATIC_DIR / "redoc" / "logo-mini.svg")

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.add_route(REDOC_URL + "/logo-mini.svg", redoc_logo, include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=STATIC_DIR), name="docs-assets")
