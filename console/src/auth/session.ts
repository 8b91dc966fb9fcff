// The signed-in session: the access token in memory only (never storage); the refresh token stays in an HttpOnly
// cookie the script cannot read, sent by the browser to /auth/console/refresh only.
import { ApiProblem, toProblem } from "../api/problem";

export interface Session {
  accessToken: string;
  expiresAt: number;
  role: string;
  sessionId: string;
  tenantId: string;
}

interface ConsoleSessionBody {
  access_token: string;
  expires_in: number;
  role: string;
  session_id: string;
  tenant_id: string;
}

export type SignInStep = { kind: "signed-in"; session: Session } | { kind: "second-factor"; challenge: string };

let current: Session | null = null;
let refreshing: Promise<Session | null> | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<(session: Session | null) => void>();

export const CONSOLE_HEADERS = { "Content-Type": "application/json", "X-Vigie-Console": "1" } as const;

export function currentSession(): Session | null {
  return current;
}

export function onSessionChange(listener: (session: Session | null) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setSession(session: Session | null): void {
  current = session;
  clearTimeout(refreshTimer);
  if (session) {
    // Refresh a little before the access token expires, so the live queue's stream reconnects with a valid one.
    const inMs = Math.max(5_000, session.expiresAt - Date.now() - 30_000);
    refreshTimer = setTimeout(() => void refreshSession(), inMs);
  }
  for (const listener of listeners) listener(session);
}

function fromBody(body: ConsoleSessionBody): Session {
  return {
    accessToken: body.access_token,
    expiresAt: Date.now() + body.expires_in * 1000,
    role: body.role,
    sessionId: body.session_id,
    tenantId: body.tenant_id,
  };
}

async function post(path: string, body: unknown, token?: string): Promise<unknown> {
  const headers: Record<string, string> = { ...CONSOLE_HEADERS };
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const response = await fetch(path, {
    method: "POST",
    headers,
    credentials: "same-origin",
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiProblem(toProblem(parsed, response.status));
  return parsed;
}

export async function signIn(email: string, password: string): Promise<SignInStep> {
  const body = (await post("/auth/console/login", { email, password })) as
    | ConsoleSessionBody
    | { challenge: string; status: string };
  if ("challenge" in body) return { kind: "second-factor", challenge: body.challenge };
  const session = fromBody(body);
  setSession(session);
  return { kind: "signed-in", session };
}

export async function secondFactor(challenge: string, code: string): Promise<Session> {
  const session = fromBody((await post("/auth/console/login/totp", { challenge, code })) as ConsoleSessionBody);
  setSession(session);
  return session;
}

/** A new access token from the refresh cookie; one request at a time (each refresh token works once). */
export function refreshSession(): Promise<Session | null> {
  refreshing ??= (async () => {
    try {
      const session = fromBody((await post("/auth/console/refresh", undefined)) as ConsoleSessionBody);
      setSession(session);
      return session;
    } catch (error) {
      if (error instanceof ApiProblem && error.status < 500) setSession(null);
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** What the sign-in page offers besides the password; nothing more when the API cannot be asked. */
export async function signInOptions(): Promise<{ oidc: boolean }> {
  try {
    const response = await fetch("/auth/console/options", { headers: CONSOLE_HEADERS, credentials: "same-origin" });
    if (!response.ok) return { oidc: false };
    const body = (await response.json()) as { oidc?: unknown };
    return { oidc: body.oidc === true };
  } catch {
    return { oidc: false };
  }
}

export async function signOut(): Promise<void> {
  const session = current;
  setSession(null);
  if (session) {
    try {
      await post("/auth/console/logout", undefined, session.accessToken);
    } catch {
      // The session is gone from this page either way; the server ends it at its expiry at worst.
    }
  }
}
