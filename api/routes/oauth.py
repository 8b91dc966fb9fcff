"""OAuth 2.0 for native apps (RFC 8252): the platform's sign-in page (authorization endpoint) and the form-encoded
token endpoint with RFC 6749 §5.2 errors. Public: the caller has no token yet."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from api.deps import ServicesDep
from api.proxies import client_host
from api.signin_page import HEADERS, error_page, second_factor_page, sign_in_page
from core.errors import AuthenticationFailed, InvalidInput, PermissionDenied, RateLimited, VigieError
from identity.authorization import Consent, InvalidAuthorizationRequest, SecondFactorNeeded
from identity.oauth_server import HttpRequest, HttpResponse

FORM = "application/x-www-form-urlencoded"
_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_REDIRECTS = {302: ResponseSpec(data_container=None, description="To the app's registered redirect URI: `code` and "
                                "`state`, or `error` and `state`", generate_examples=False)}
# What the page says for each refusal (the detail, in English, follows in small print).
_MESSAGES: list[tuple[type[VigieError], int, str]] = [
    (RateLimited, 429, "Trop de tentatives : réessayez plus tard."),
    (PermissionDenied, 403, "Ce compte ne peut pas se connecter ici."),
    (AuthenticationFailed, 200, "Identifiants ou code incorrects."),
    (InvalidInput, 200, "Saisissez votre adresse électronique et votre mot de passe."),
]


def _media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _http(request: Request[Any, Any, Any], *, with_form: bool) -> HttpRequest:
    form: tuple[tuple[str, str], ...] = ()
    if with_form and _media_type(request) == FORM:
        form = tuple((k, str(v)) for k, v in (await request.form()).multi_items())
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        received_url=str(request.url),
        headers=request.headers,
        query=tuple(request.query_params.multi_items()),
        form=form,
        client_ip=client_host(request),
        user_agent=request.headers.get("user-agent", ""),
    )


def _html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(content=page, status_code=status, media_type=MediaType.HTML, headers={**HEADERS, **(headers or {})})


def _redirect(outcome: HttpResponse) -> Response[str]:
    """A 302 to the app's registered redirect URI (code and state, or the error and the state)."""
    headers = {k: v for k, v in outcome.headers if k.lower() == "location"}
    return Response(content="", status_code=outcome.status, headers={**headers, "Cache-Control": "no-store"})


def _refusal(consent: Consent, http: HttpRequest, exc: VigieError) -> Response[str]:
    status, message = next(((s, m) for t, s, m in _MESSAGES if isinstance(exc, t)), (400, "Connexion refusée."))
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    form = dict(http.form)
    if "challenge" in form and not isinstance(exc, RateLimited):
        page = second_factor_page(consent.client_name, consent.parameters, form["challenge"], error=message,
                                  detail=exc.detail)
    else:
        page = sign_in_page(consent.client_name, consent.parameters, email=form.get("email", "")[:254],
                            error=message, detail=exc.detail)
    return _html(page, status, headers)


class OAuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @get(
        "/authorize",
        summary="The platform's sign-in page of an app's authorization request (code + PKCE S256, RFC 8252)",
        exclude_from_auth=True,
        security=[],
        media_type=MediaType.HTML,
        responses=_REDIRECTS,
    )
    async def authorize_page(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        try:
            consent = await services.authorization.consent(await _http(request, with_form=False))
        except InvalidAuthorizationRequest as exc:
            return _html(error_page("Cette demande de connexion n'est pas valide.", exc.detail), 400)
        if isinstance(consent, HttpResponse):
            return _redirect(consent)
        return _html(sign_in_page(consent.client_name, consent.parameters))

    @post(
        "/authorize",
        summary="Sign in on the platform's page; answers with a 302 to the app's redirect URI carrying the code",
        exclude_from_auth=True,
        security=[],
        media_type=MediaType.HTML,
        responses=_REDIRECTS,
        status_code=200,
        opt={"form_body": True},
    )
    async def authorize(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        if _media_type(request) != FORM:
            return _html(error_page("Le formulaire de connexion est mal formé."), 400)
        http = await _http(request, with_form=True)
        if any("\x00" in v for _, v in http.form):
            return _html(error_page("Le formulaire de connexion est mal formé."), 400)
        try:
            consent = await services.authorization.consent(http)
        except InvalidAuthorizationRequest as exc:
            return _html(error_page("Cette demande de connexion n'est pas valide.", exc.detail), 400)
        if isinstance(consent, HttpResponse):
            return _redirect(consent)
        try:
            outcome = await services.authorization.sign_in(http, consent)
        except InvalidAuthorizationRequest as exc:
            return _html(error_page("Cette demande de connexion n'est pas valide.", exc.detail), 400)
        except (AuthenticationFailed, PermissionDenied, RateLimited, InvalidInput) as exc:
            return _refusal(consent, http, exc)
        if isinstance(outcome, SecondFactorNeeded):
            return _html(second_factor_page(outcome.consent.client_name, outcome.consent.parameters,
                                            outcome.challenge))
        return _redirect(outcome)

    @post(
        "/token",
        summary="Redeem an authorization code (PKCE verifier, DPoP proof) or a refresh token; form-encoded",
        description="RFC 6749 §4.1.3 and §6, application/x-www-form-urlencoded; errors are RFC 6749 §5.2 JSON "
        "(`invalid_request`, `invalid_grant`, `invalid_client`, `unsupported_grant_type`, `invalid_dpop_proof`).",
        exclude_from_auth=True,
        security=[],
        status_code=200,
        opt={"form_body": True},
    )
    async def token(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[Any]:
        if _media_type(request) != FORM:
            body: Any = {"error": "invalid_request",
                         "error_description": "the token endpoint takes application/x-www-form-urlencoded"}
            return Response(content=body, status_code=400, media_type=MediaType.JSON, headers=_JSON_HEADERS)
        outcome = await services.authorization.token(await _http(request, with_form=True))
        headers = {k: v for k, v in outcome.headers if k.lower() != "content-type"}
        return Response(content=outcome.body, status_code=outcome.status, media_type=MediaType.JSON,
                        headers={**headers, **_JSON_HEADERS})


ROUTES = [OAuthController]
