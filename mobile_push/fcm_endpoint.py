"""A local FCM HTTP v1 server (messages:send and the service-account OAuth2 token grant) with fault injection."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Either scope grants FCM v1 sends; firebase-admin's Certificate asks for cloud-platform among others.
FCM_SCOPES = {"https://www.googleapis.com/auth/firebase.messaging", "https://www.googleapis.com/auth/cloud-platform"}
_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_INBOX = re.compile(r"^/inbox/([A-Za-z0-9_:\-]{1,4096})$")
# What FCM accepts as a registration token (observed shapes: 140-200 chars of base64url and a colon).
_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{20,4096}$")

# Each fault answers one messages:send exactly as FCM HTTP v1 documents it (status, google.rpc status, FcmError).
FAULTS: dict[str, tuple[int, str, str, str | None]] = {
    "unregistered": (404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
    "invalid_token": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        "INVALID_ARGUMENT",
    ),
    "invalid_payload": (400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'", "INVALID_ARGUMENT"),
    "sender_id_mismatch": (403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
    "quota_exceeded": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'", "QUOTA_EXCEEDED"),
    "internal": (500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
    "unavailable": (503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
    "third_party_auth": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR"),
}
ANY_TOKEN = "*"


@dataclass
class Fault:
    """One injected answer: `kind` from FAULTS (or "latency" alone); `times` requests (-1: until cleared)."""

    kind: str | None
    times: int = 1
    retry_after_s: int | None = None
    latency_ms: int = 0


@dataclass
class Received:
    """A messages:send the endpoint answered, kept for tests and the benchmark."""

    at: float
    project: str
    token: str | None
    alert_id: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    status: int


@dataclass
class EndpointState:
    """Everything the server knows: issued access tokens, faults, inboxes, what it received."""

    project_id: str
    public_key: RSAKey | None
    client_email: str | None
    issued: set[str] = field(default_factory=set)
    token_grants: int = 0
    refuse_credentials: bool = False
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    inbox: dict[str, deque[dict[str, Any]]] = field(default_factory=lambda: defaultdict(deque))
    received: list[Received] = field(default_factory=list)
    accepted: int = 0
    keep_bodies: bool = True
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def take_fault(self, token: str | None) -> Fault | None:
        for key in (token or "", ANY_TOKEN):
            queue = self.faults.get(key)
            if queue:
                fault = queue[0]
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        queue.popleft()
                return fault
        return None


def _error(status: int, rpc: str, message: str, fcm_code: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if fcm_code:
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
    return {"error": error}


class FcmEndpointApp:
    """The ASGI application. Control routes (/_control/*, /inbox/*) are this endpoint's own, not FCM's."""

    def __init__(self, state: EndpointState) -> None:
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, payload, extra = await self.route(
            scope["method"], scope["path"], scope.get("query_string", b"").decode(), headers, body
        )
        data = json.dumps(payload).encode()
        response_headers = [
            (b"content-type", b"application/json; charset=UTF-8"),
            (b"content-length", b"%d" % len(data)),
        ]
        response_headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": data})

    async def route(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "POST" and path == "/token":
            return self.token_grant(body)
        match = _SEND.match(path)
        if method == "POST" and match:
            return await self.messages_send(match.group(1), headers, body)
        match = _INBOX.match(path)
        if method == "GET" and match:
            wait_s = float(parse_qs(query).get("wait_s", ["0"])[0])
            return 200, await self.take_inbox(match.group(1), min(wait_s, 30.0)), {}
        if path.startswith("/_control/"):
            return self.control(method, path.removeprefix("/_control/"), body)
        return 404, _error(404, "NOT_FOUND", f"no route {method} {path}", None), {}

    # --- Google OAuth2: the JWT-bearer grant a service-account credential makes (RFC 7523)
    def token_grant(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER or "assertion" not in form:
            return 400, {"error": "unsupported_grant_type", "error_description": "expected a JWT bearer grant"}, {}
        if self.state.refuse_credentials:
            # What Google answers for a deleted or disabled service-account key.
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {}
        if self.state.public_key is not None:
            try:
                token = jwt.decode(form["assertion"], self.state.public_key, algorithms=["RS256"])
            except (JoseError, ValueError) as exc:
                return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, {}
            claims = token.claims
            now = time.time()
            if (
                claims.get("iss") != self.state.client_email
                or not FCM_SCOPES & set(str(claims.get("scope", "")).split())
                or not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300)
            ):
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}, {}
        access = "ya29.local-" + secrets.token_urlsafe(24)
        self.state.issued.add(access)
        self.state.token_grants += 1
        return 200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}, {}

    # --- FCM HTTP v1 messages:send
    async def messages_send(
        self, project: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        received_at = time.time()
        try:
            request = json.loads(body)
            message = request["message"]
            assert isinstance(message, dict)
        except (ValueError, KeyError, AssertionError):
            return 400, _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", None), {}
        token = message.get("token") or message.get("fid")
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        status, payload, extra = 200, {}, {}
        fault = state.take_fault(token) if token else None
        if fault and fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if scheme.lower() != "bearer" or bearer not in state.issued:
            status, payload = (
                401,
                _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", None),
            )
        elif project != state.project_id:
            status, payload = 403, _error(403, "PERMISSION_DENIED", f"Permission denied on project {project}", None)
        elif not token or not isinstance(token, str) or not _TOKEN.match(token):
            status, payload = 400, _error(400, *FAULTS["invalid_token"][1:])
        elif not all(isinstance(v, str) for v in (message.get("data") or {}).values()):
            status, payload = 400, _error(400, *FAULTS["invalid_payload"][1:])
        elif fault and fault.kind:
            code, rpc, text, fcm = FAULTS[fault.kind]
            status, payload = code, _error(code, rpc, text, fcm)
            if fault.retry_after_s is not None:
                extra["retry-after"] = str(fault.retry_after_s)
        else:
            state.accepted += 1
            payload = {"name": f"projects/{project}/messages/{state.accepted}:{secrets.token_hex(4)}"}
            if not request.get("validate_only"):
                state.inbox[token].append({"name": payload["name"], "received_at": time.time(), "message": message})
                waiter = state.waiters.pop(token, None)
                if waiter is not None:
                    waiter.set()
        alert_id = (message.get("data") or {}).get("alert_id")
        if state.keep_bodies:
            state.received.append(Received(received_at, project, token, alert_id, request, headers, status))
        else:
            state.received.append(Received(received_at, project, token, alert_id, {}, {}, status))
        return status, payload, extra

    async def take_inbox(self, token: str, wait_s: float) -> list[dict[str, Any]]:
        """What a phone holding `token` would have received (long poll up to `wait_s`)."""
        queue = self.state.inbox[token]
        if not queue and wait_s > 0:
            waiter = self.state.waiters.setdefault(token, asyncio.Event())
            try:
                await asyncio.wait_for(waiter.wait(), wait_s)
            except TimeoutError:
                self.state.waiters.pop(token, None)
        items = list(queue)
        queue.clear()
        return items

    # --- control plane of this endpoint (tests, demo, benchmark)
    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"detail": "malformed JSON"}, {}
        if method == "POST" and path == "faults":
            kind = data.get("kind")
            if kind is not None and kind not in FAULTS:
                return 400, {"detail": f"unknown fault {kind!r}; one of {sorted(FAULTS)}"}, {}
            fault = Fault(kind, int(data.get("times", 1)), data.get("retry_after_s"), int(data.get("latency_ms", 0)))
            state.faults[str(data.get("token", ANY_TOKEN))].append(fault)
            return 200, {"queued": True}, {}
        if method == "POST" and path == "credentials":
            state.refuse_credentials = bool(data.get("refuse"))
            if data.get("revoke_issued"):
                state.issued.clear()
            return 200, {"refuse_credentials": state.refuse_credentials}, {}
        if method == "POST" and path == "reset":
            state.faults.clear()
            state.inbox.clear()
            state.received.clear()
            state.refuse_credentials = False
            return 200, {"reset": True}, {}
        if method == "GET" and path == "stats":
            statuses: dict[str, int] = defaultdict(int)
            for item in state.received:
                statuses[str(item.status)] += 1
            return 200, {"accepted": state.accepted, "token_grants": state.token_grants, "statuses": statuses}, {}
        if method == "GET" and path == "received":
            # When each message reached the endpoint, by alert id: the benchmark's latency measure.
            return 200, [{"at": r.at, "alert_id": r.alert_id, "status": r.status} for r in state.received], {}
        return 404, {"detail": "no such control route"}, {}


# --- service account: the same JSON shape Google issues, pointing its token_uri at this endpoint
def write_service_account(path: Path, *, base_url: str, project_id: str) -> dict[str, Any]:
    """A fresh RSA key in a Google service-account JSON whose token_uri is this endpoint's /token."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": f"{base_url}/o/oauth2/auth",
        "token_uri": f"{base_url}/token",
        "universe_domain": "googleapis.com",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(account, indent=2))
    path.chmod(0o600)
    return account


def state_for(service_account: dict[str, Any]) -> EndpointState:
    """The endpoint trusts exactly the key of this service account."""
    private = serialization.load_pem_private_key(service_account["private_key"].encode(), password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return EndpointState(
        project_id=service_account["project_id"],
        public_key=RSAKey.import_key(public_pem),
        client_email=service_account["client_email"],
    )


class FcmEndpoint:
    """The server on a port, in a background thread: for tests and the demo."""

    def __init__(self, state: EndpointState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        self.state = state
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(FcmEndpointApp(state), log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> FcmEndpoint:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="fcm-endpoint", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the local FCM endpoint did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local FCM HTTP v1 + OAuth2 endpoint (tests, demo, benchmark)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--project", default="vigie-local")
    parser.add_argument("--service-account", type=Path, required=True, help="written if absent, then trusted")
    parser.add_argument("--no-bodies", action="store_true", help="keep no request bodies (long benchmarks)")
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    if args.service_account.exists():
        account = json.loads(args.service_account.read_text())
    else:
        account = write_service_account(args.service_account, base_url=base, project_id=args.project)
    state = state_for(account)
    state.keep_bodies = not args.no_bodies
    uvicorn.run(FcmEndpointApp(state), host=args.host, port=args.port, log_level="warning", access_log=False)


def start_local(service_account_file: Path, port: int, *, project_id: str = "vigie-local") -> str:
    """Start the endpoint in this process (demo), creating its service account on first use; returns its URL."""
    base = f"http://127.0.0.1:{port}"
    if service_account_file.exists():
        account = json.loads(service_account_file.read_text())
    else:
        account = write_service_account(service_account_file, base_url=base, project_id=project_id)
    FcmEndpoint(state_for(account), port=port).start()
    return base


if __name__ == "__main__":
    main()
