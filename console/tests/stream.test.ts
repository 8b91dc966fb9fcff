import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonResponse, requestOf, SESSION } from "./http";


function events(text: string): Response {
  return new Response(text, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

describe("the live queue's stream", () => {
  beforeEach(() => vi.resetModules());
  afterEach(() => vi.unstubAllGlobals());

  it("says when the server is ready, and resumes from ready's id after a drop that brought no event", async () => {
    const resumedFrom: (string | null)[] = [];
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = requestOf(input, init);
      if (new URL(request.url).pathname !== "/alerts/stream") {
        return jsonResponse(200, SESSION);
      }
      resumedFrom.push(new Headers(init?.headers).get("Last-Event-ID"));
      // The first connection is ready, then drops before any event; the second brings what was raised meanwhile.
      return resumedFrom.length === 1
        ? events("event: ready\nid: 41\ndata: {}\n\n")
        : events('event: ready\nid: 41\ndata: {}\n\nevent: raised\nid: 42\ndata: {"alert_id": "a"}\n\n');
    }));
    const auth = await import("../src/auth/session");
    const { followQueue } = await import("../src/queue/stream");
    await auth.signIn("op@x.test", "pw");

    const controller = new AbortController();
    let readies = 0;
    const received = new Promise<[string, unknown, string]>((resolve) => {
      followQueue({
        onStatus: () => undefined,
        onReady: () => { readies += 1; },
        onEvent: (kind, data, id) => resolve([kind, data, id]),
      }, controller.signal);
    });
    const [kind, data, id] = await received;
    controller.abort();
    expect([kind, data, id]).toEqual(["raised", { alert_id: "a" }, "42"]);
    expect(resumedFrom).toEqual([null, "41"]);
    expect(readies).toBe(2);
  });
});
