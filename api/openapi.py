"""OpenAPI settings, and the problem+json responses every operation can return, documented once."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, OpenAPIMediaType, OpenAPIResponse, Reference, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIType

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "request_id": Schema(type=OpenAPIType.STRING),
        "field": Schema(type=OpenAPIType.STRING),
        "reference": Schema(type=OpenAPIType.STRING),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
    },
)
_PUBLIC_STATUSES = {
    "400": "Invalid request",
    "413": "Body too large",
    "415": "Body is not JSON",
    "422": "A field breaks a rule",
    "429": "Too many attempts",
    "503": "A dependency is down",
}
# OAuth endpoints answer in their own protocol besides problem+json (which the framework's checks still produce): the
# sign-in page shows errors as HTML; the token endpoint answers RFC 6749 §5.2 JSON errors.
OAUTH_ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={"error": Schema(type=OpenAPIType.STRING), "error_description": Schema(type=OpenAPIType.STRING)},
)
_OWN_ERROR_MEDIA = {
    "/auth/authorize": ("text/html", Schema(type=OpenAPIType.STRING)),
    "/auth/token": ("application/json", OAUTH_ERROR_SCHEMA),
}
_AUTHENTICATED_STATUSES = {
    "401": "Missing or invalid token",
    "403": "Role not allowed",
    "404": "Not found (or outside the caller's scope)",
    "409": "Conflicting state",
}


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Vigie",
        version=version,
        description="Departmental video-protection supervision centre. Every tenant-owned object outside the "
        "caller's scope answers 404, exactly like a missing one.",
        security=[{"BearerToken": []}],
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")},
            schemas={"Problem": PROBLEM_SCHEMA},
        ),
        path="/schema",
        render_plugins=[JsonRenderPlugin(), YamlRenderPlugin(), swagger_page()],
    )


# Swagger UI's files come with the console's build (console/scripts/copy-vendor.mjs copies them from the
# swagger-ui-dist package): the page works in an air-gapped centre, with no CDN and no third-party favicon.
SWAGGER_ASSETS = "/console/vendor/swagger-ui"


def swagger_page() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path=["/swagger", "/"], js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
    )


def document_problems(app: Litestar, public_paths: list[str]) -> None:
    """Add the problem responses to every operation (handlers cannot declare them globally), and mark
    the public operations as needing no token."""
    public = [re.compile(p) for p in public_paths]
    schema = app.openapi_schema
    schema.components.schemas["Problem"] = PROBLEM_SCHEMA
    for path, item in (schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if any(p.match(path) for p in public) and not path.startswith("/auth/logout"):
                operation.security = []
            statuses = dict(_PUBLIC_STATUSES)
            if operation.security != []:
                statuses.update(_AUTHENTICATED_STATUSES)
            if path.startswith("/auth"):
                statuses.update(
                    {"401": "Sign-in refused", "403": "Not allowed", "409": "Conflicting state", "404": "Not found"}
                )
            responses = operation.responses or {}
            own = _OWN_ERROR_MEDIA.get(path)
            for status, description in statuses.items():
                # Replaces the framework's plain-JSON 400: every error is problem+json.
                responses[status] = OpenAPIResponse(
                    description=description,
                    content={
                        "application/problem+json": OpenAPIMediaType(schema=Reference("#/components/schemas/Problem")),
                        **({own[0]: OpenAPIMediaType(schema=own[1])} if own else {}),
                    },
                )
            operation.responses = responses
