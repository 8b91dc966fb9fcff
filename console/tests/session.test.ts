import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonResponse, requestOf, SESSION } from "./http";

type Call = { url: string; init: RequestInit | undefined; headers: Headers };

describe("the session and the client", () => {
  let calls: Call[];
  beforeEach(() => {
    vi.resetModules();
    calls = [];
  });
  afterEach(() => vi.unstubAllGlobals());

  function stubFetch(answer: (call: Call) => Response): void {
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = requestOf(input, init);
      const call = { url: new URL(request.url).pathname, init, headers: request.headers };
      calls.push(call);
      return answer(call);
    }));
  }

  it("signs in with the second factor and keeps the token in memory only", async () => {
    stubFetch((call) => call.url === "/auth/console/login"
      ? jsonResponse(200, { status: "second_factor_required", challenge: "challenge-123" })
      : jsonResponse(200, SESSION));
    const auth = await import("../src/auth/session");
    const step = await auth.signIn("op@x.test", "pw");
    expect(step).toEqual({ kind: "second-factor", challenge: "challenge-123" });
    const signed = await auth.secondFactor("challenge-123", "123456");
    expect(signed.accessToken).toBe("access-1");
    expect(auth.currentSession()?.role).toBe("operator");
    expect(calls.every((c) => c.headers.get("X-Vigie-Console") === "1")).toBe(true);
    expect(calls.every((c) => c.init?.credentials === "same-origin")).toBe(true);
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
  });

  it("shows the API's problem when the code is refused", async () => {
    stubFetch(() => jsonResponse(401, { status: 401, title: "Unauthorized", detail: "code refusé", field: "code" }));
    const auth = await import("../src/auth/session");
    await expect(auth.secondFactor("challenge-123", "000000")).rejects.toMatchObject({ problem: { field: "code" } });
    expect(auth.currentSession()).toBeNull();
  });

  it("refreshes once on a 401 and retries with the new token", async () => {
    let refreshes = 0;
    stubFetch((call) => {
      if (call.url === "/auth/console/login") return jsonResponse(200, SESSION);
      if (call.url === "/auth/console/refresh") {
        refreshes += 1;
        return jsonResponse(200, { ...SESSION, access_token: "access-2" });
      }
      return call.headers.get("Authorization") === "Bearer access-2"
        ? jsonResponse(200, { items: [], next_cursor: null })
        : jsonResponse(401, { status: 401, detail: "expired" });
    });
    const auth = await import("../src/auth/session");
    const { api, unwrap } = await import("../src/api/client");
    await auth.signIn("op@x.test", "pw");
    const page = unwrap(await api.GET("/logbook", { params: { query: { hours: 24 } } }));
    expect(page.items).toEqual([]);
    expect(refreshes).toBe(1);
    expect(auth.currentSession()?.accessToken).toBe("access-2");
  });

  it("signs out when the refresh cookie is refused", async () => {
    stubFetch((call) => call.url === "/auth/console/refresh"
      ? jsonResponse(401, { status: 401, detail: "no console session" })
      : jsonResponse(200, SESSION));
    const auth = await import("../src/auth/session");
    await auth.signIn("op@x.test", "pw");
    expect(await auth.refreshSession()).toBeNull();
    expect(auth.currentSession()).toBeNull();
  });
});
