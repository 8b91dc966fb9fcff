import { cleanup, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Alert } from "../src/queue/store";
import { jsonResponse, requestOf } from "./http";

const ALERT_ID = "0b6f0f3e-6a53-4f43-9d3c-6f8f3b2a9c11";
const FORCE = { force_id: "5d1c2f7a-1b7e-4f7e-8d0a-2c8e4b1f6a01", kind: "police_nationale",
  name: "Circonscription de sécurité publique de Cergy-Pontoise", phone: "01 34 00 00 00" };

function alertIn(state: string, prompt: string | null = null): Alert {
  const at = "2026-12-05T02:35:51Z";
  return {
    id: ALERT_ID, state, call_force_prompt_at: prompt, auto_dispatched: false, camera_id: "c", claimed_at: at,
    claimed_by: "u", clip_id: null, clip_status: "pending", closed_at: null, detail: "entered zone Cour fermée",
    dismissed_reason: null, first_seen_at: at, insee_code: "95127", last_seen_at: at, legal_event_type: "forbidden_zone",
    occurrences: 1, outcome: null, priority: 32, raised_at: at, rule_id: "r", rule_type: "intrusion", severity: 3,
    site_id: "s", sla_claim_due_at: null, snapshot_key: null, tenant_id: "t", verdict: "confirmed", verified_at: at,
    verified_by: "u",
  } as unknown as Alert;
}

describe("the alert panel's competent forces", () => {
  let forceRequests: number;
  let detailRequests: number;
  let alert: Alert;

  beforeEach(() => {
    vi.resetModules();
    forceRequests = 0;
    detailRequests = 0;
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL) => {
      const path = new URL(requestOf(input).url).pathname;
      if (path.endsWith("/competent-forces")) {
        forceRequests += 1;
        return jsonResponse(200, [FORCE]);
      }
      if (path.endsWith("/responders")) return jsonResponse(200, { dispatches: [], statuses: [] });
      detailRequests += 1;
      return jsonResponse(200, { alert, dispatches: [], sop: [] });
    }));
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  async function panel() {
    const { AlertPanel } = await import("../src/queue/alert-panel");
    return (version: number, form: "dispatch" | null) => (
      <AlertPanel alert={alert} now={Date.parse("2026-12-05T02:36:00Z")} form={form} setForm={() => undefined}
                  onChanged={() => undefined} version={version} />
    );
  }

  it("keeps the proposed forces in the open dispatch form when an event of the alert reloads the panel", async () => {
    alert = alertIn("verified");
    const view = await panel();
    const { rerender } = render(view(0, "dispatch"));
    await waitFor(() => expect(screen.getByRole("checkbox", { name: new RegExp(FORCE.name) })).toBeTruthy());

    // The live queue's state-changed event for this alert bumps the version: the detail is read again.
    rerender(view(1, "dispatch"));
    await waitFor(() => expect(detailRequests).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.getByRole("checkbox", { name: new RegExp(FORCE.name) })).toBeTruthy();
    expect(screen.queryByText("Aucune force compétente n’est proposée pour cette alarme.")).toBeNull();
    expect(forceRequests).toBe(1);
  });

  it("keeps the forces' phone numbers in the escalation prompt when a responder's status arrives", async () => {
    alert = alertIn("dispatched", "2026-12-05T02:37:00Z");
    const view = await panel();
    const { rerender } = render(view(0, null));
    const prompt = `Appelez ${FORCE.name} au ${FORCE.phone}`;
    await waitFor(() => expect(screen.getByText(new RegExp(prompt))).toBeTruthy());
    rerender(view(1, null));
    await waitFor(() => expect(detailRequests).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.getByText(new RegExp(prompt))).toBeTruthy();
  });

  it("shows the alert chosen last, even when the previous one's detail answers after it", async () => {
    const first = alertIn("verified");
    const second = { ...alertIn("new"), id: "7c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", detail: "crossed line Quai 2" };
    let answerFirst: () => void = () => undefined;
    const firstAnswered = new Promise<void>((resolve) => { answerFirst = resolve; });
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL) => {
      const path = new URL(requestOf(input).url).pathname;
      const wanted = path.includes(first.id) ? first : second;
      if (path.endsWith("/responders")) return jsonResponse(200, { dispatches: [], statuses: [] });
      if (wanted === first) await firstAnswered;
      return jsonResponse(200, { alert: wanted, dispatches: [], sop: [] });
    }));
    const { AlertPanel } = await import("../src/queue/alert-panel");
    const view = (shown: Alert) => (
      <AlertPanel alert={shown} now={Date.parse("2026-12-05T02:36:00Z")} form={null} setForm={() => undefined}
                  onChanged={() => undefined} version={0} />
    );
    const { rerender } = render(view(first));
    rerender(view(second));
    await waitFor(() => expect(screen.getByText("crossed line Quai 2")).toBeTruthy());
    answerFirst();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.getByText("crossed line Quai 2")).toBeTruthy();
    expect(screen.queryByText("entered zone Cour fermée")).toBeNull();
  });
});
