"""Serving the OpenAPI documents in `openapi/`, and the interactive docs page built on them.

The documents are written by hand and kept beside the code (a test holds them to each app's
routing table both ways). The docs page is Swagger UI from the `swagger-ui-py` package,
served from this process: it loads nothing from any other host, so it works offline.
"""
from __future__ import annotations

import functools
import html
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from tornado.web import StaticFileHandler

from common.web import JsonHandler

DOCUMENTS = Path(__file__).resolve().parents[1] / "openapi"
# The files of Swagger UI the page needs, and the Content-Type each is served with.
DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


@functools.cache
def load_document(name: str) -> dict[str, Any]:
    """The document `openapi/<name>.json`, read once per process."""
    return json.loads((DOCUMENTS / f"{name}.json").read_text(encoding="utf-8"))


def openapi_route(url: str, name: str) -> tuple[str, type, dict[str, str]]:
    """The route serving document `name` at `url`."""
    return (url, OpenApiHandler, {"name": name})


def docs_routes(url: str, document_url: str, name: str) -> list[tuple[Any, ...]]:
    """The docs page at `url`, its Swagger UI files under `url/`, reading `document_url`
    (document `name`, whose title the page takes). The files are not API operations: the
    document does not list them."""
    assets = "|".join(re.escape(asset) for asset in DOCS_ASSETS)
    return [
        (url, DocsPageHandler, {"assets_url": url, "document_url": document_url, "name": name}),
        (f"{url}/({assets})", DocsAssetHandler),
    ]


@functools.cache
def swagger_ui_files() -> str:
    """The folder of Swagger UI's files in the installed swagger-ui-py package."""
    # find_spec locates the package without importing it (its own code needs jinja2 and yaml).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make install`")
    return str(Path(spec.submodule_search_locations[0]) / "static")


class OpenApiHandler(JsonHandler):
    """The service's OpenAPI document. Open like /ping: it describes, it holds no data."""

    requires_token = False

    def initialize(self, name: str) -> None:
        self.name = name

    def get(self) -> None:
        self.send_json(load_document(self.name))


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>{title}: interactive docs</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script>
    // validatorUrl null: the default badge would send the document to validator.swagger.io.
    window.ui = SwaggerUIBundle({{
      url: "{document}", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


class DocsPageHandler(JsonHandler):
    """The docs page: HTML by nature, the one page that is not JSON (its errors still are)."""

    requires_token = False

    def initialize(self, assets_url: str, document_url: str, name: str) -> None:
        title = html.escape(load_document(name)["info"]["title"])
        self.page = PAGE.format(assets=assets_url, document=document_url, title=title)

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(self.page)


class DocsAssetHandler(StaticFileHandler, JsonHandler):
    """Swagger UI's files, with tornado's caching; errors (a 405) go through JsonHandler."""

    requires_token = False
    # The file's own HEAD, as its GET is StaticFileHandler's (which takes the path).
    head = StaticFileHandler.head  # type: ignore[assignment]  # its signature, not ours

    def initialize(self) -> None:  # type: ignore[override]  # the path is ours, not a route's
        # Found on first use rather than in make_app, which does no I/O.
        super().initialize(path=swagger_ui_files())

    def get_content_type(self) -> str:
        assert self.absolute_path is not None  # set by get() before it asks for the type
        return DOCS_ASSETS[Path(self.absolute_path).name]
