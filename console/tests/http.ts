// What the tests' stand-in for `fetch` answers with: a JSON response, the request a call made, a signed-in session.

export const SESSION = { access_token: "access-1", expires_in: 300, session_id: "s", role: "operator", tenant_id: "t" };

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** The request a `fetch(input, init)` call makes (openapi-fetch passes a Request, other code a path). */
export function requestOf(input: RequestInfo | URL, init?: RequestInit): Request {
  return input instanceof Request ? input : new Request(new URL(String(input), "http://127.0.0.1"), init);
}
