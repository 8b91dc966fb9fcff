"""The platform's sign-in page for native apps (RFC 8252): one self-contained French HTML page, no external asset,
no script, served with a strict Content-Security-Policy; every value is HTML-escaped."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from string import Template
from urllib.parse import urlencode

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111827}"
    "main{max-width:24rem;margin:3rem auto;padding:1.5rem;background:#fff;border-radius:.5rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.15)}"
    "h1{font-size:1.4rem;margin:0 0 .5rem}label{display:block;margin:.9rem 0 .3rem;font-weight:600}"
    "input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #9ca3af;"
    "border-radius:.3rem}button{margin-top:1.2rem;width:100%;padding:.7rem;font-size:1rem;border:0;"
    "border-radius:.3rem;background:#1d4ed8;color:#fff}.error{background:#fee2e2;color:#991b1b;padding:.6rem;"
    "border-radius:.3rem}.detail{font-size:.8rem;color:#6b7280}.note{font-size:.85rem;color:#4b5563}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# No form-action directive: after the form is posted, the answer redirects to the app's own URI (a private-use
# scheme or a loopback port), which form-action would have to list and some browsers would block.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_PAGE = Template("""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Connexion — Vigie</title>
<style>$style</style>
</head>
<body>
<main>
<h1>Connexion à Vigie</h1>
$body
</main>
</body>
</html>
""")

_FORM = Template("""<p>Application : <strong>$client</strong></p>
$error<form method="post" action="/auth/authorize">
$hidden$fields<button type="submit">$button</button>
</form>
$after""")

_PASSWORD_FIELDS = Template("""<label for="email">Adresse électronique</label>
<input id="email" name="email" type="email" autocomplete="username" required maxlength="254" value="$email">
<label for="password">Mot de passe</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
""")

_CODE_FIELDS = """<label for="code">Code à six chiffres de votre application d'authentification</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"
 required autofocus>
"""

NOTE = ("<p class=\"note\">Vous saisissez votre mot de passe sur la plateforme Vigie : l'application ne le voit "
        "jamais.</p>")


def _hidden(parameters: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n' for name, value in parameters
    )


def _error(message: str | None, detail: str | None) -> str:
    if not message:
        return ""
    extra = f'<br><span class="detail" lang="en">{escape(detail)}</span>' if detail else ""
    return f'<p class="error" role="alert">{escape(message)}{extra}</p>\n'


def sign_in_page(
    client: str,
    parameters: tuple[tuple[str, str], ...],
    *,
    email: str = "",
    error: str | None = None,
    detail: str | None = None,
) -> str:
    """The first step: email and password, with the app's authorization request carried in hidden fields."""
    body = _FORM.substitute(
        client=escape(client), error=_error(error, detail), hidden=_hidden(parameters),
        fields=_PASSWORD_FIELDS.substitute(email=escape(email)), button="Se connecter", after=NOTE,
    )
    return _PAGE.substitute(style=_STYLE, body=body)


def second_factor_page(
    client: str,
    parameters: tuple[tuple[str, str], ...],
    challenge: str,
    *,
    error: str | None = None,
    detail: str | None = None,
) -> str:
    """The second step for roles that need a second factor; the link starts the sign-in again."""
    restart = f"/auth/authorize?{urlencode(parameters)}"
    body = _FORM.substitute(
        client=escape(client), error=_error(error, detail),
        hidden=_hidden((*parameters, ("challenge", challenge))), fields=_CODE_FIELDS, button="Valider",
        after=f'<p class="note"><a href="{escape(restart)}">Recommencer la connexion</a></p>',
    )
    return _PAGE.substitute(style=_STYLE, body=body)


def error_page(message: str, detail: str | None = None) -> str:
    """An authorization request the platform cannot answer with a redirect (unknown app, unregistered address)."""
    body = _error(message, detail) + "<p class=\"note\">Revenez à l'application et recommencez la connexion.</p>"
    return _PAGE.substitute(style=_STYLE, body=body)
