import { cleanup, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { alertFromRaised, type Alert } from "../src/queue/store";
import { jsonResponse, requestOf, SESSION } from "./http";

const RAISED = { tenant_id: "t", occurred_at: "2026-12-05T03:00:00Z", alert_id: "a", camera_id: "c",
                 rule_type: "intrusion", severity: 3, priority: 32, insee_code: "95127" };

describe("the alarm queue page", () => {
  beforeEach(() => vi.resetModules());
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("does not let a record read before the alert's next event undo that event", async () => {
    const record = (state: string): Alert => ({ ...alertFromRaised(RAISED), state, detail: "entered zone Cour" });
    let answerFirstRead: () => void = () => undefined;
    const firstReadAnswered = new Promise<void>((resolve) => { answerFirstRead = resolve; });
    let reads = 0;
    let lists = 0;
    const encoder = new TextEncoder();
    let send: (text: string) => void = () => undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) { send = (text) => controller.enqueue(encoder.encode(text)); },
    });
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const path = new URL(requestOf(input, init).url).pathname;
      if (path === "/alerts/stream") {
        send("event: ready\nid: 7\ndata: {}\n\n");
        return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
      }
      if (path === "/alerts") {
        lists += 1;
        return jsonResponse(200, { items: [], next_cursor: null });
      }
      if (path === "/alerts/a") {
        reads += 1;
        if (reads === 1) {
          // The first read was answered by the server before the claim: it still says "new".
          await firstReadAnswered;
          return jsonResponse(200, { alert: record("new"), dispatches: [], sop: [] });
        }
        return jsonResponse(200, { alert: record("claimed"), dispatches: [], sop: [] });
      }
      return jsonResponse(200, SESSION);
    }));
    const auth = await import("../src/auth/session");
    await auth.signIn("op@x.test", "pw");
    const { QueuePage } = await import("../src/pages/queue");
    render(<QueuePage />);
    // The queue is listed (at once, then at ready); later, an alert is raised, then claimed by another operator:
    // both events arrive before the raised alert's record is answered.
    await waitFor(() => expect(lists).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    send(`event: raised\nid: 8\ndata: ${JSON.stringify(RAISED)}\n\n`);
    send(`event: state_changed\nid: 9\ndata: ${JSON.stringify({ ...RAISED, to_state: "claimed", actor_id: "op-2" })}\n\n`);
    await waitFor(() => expect(screen.getByText("prise en charge")).toBeTruthy());
    answerFirstRead();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(screen.getByText("prise en charge")).toBeTruthy();
    expect(screen.queryByText("nouvelle")).toBeNull();
  });
});
