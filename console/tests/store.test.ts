import { describe, expect, it } from "vitest";
import {
  alertFromRaised, applyEvent, claimTimeLeft, mergeSnapshot, ordered, withAlert, type Alert, type QueueEvent,
} from "../src/queue/store";

function raised(id: string, priority: number, at: string): QueueEvent {
  return { tenant_id: "t", occurred_at: at, alert_id: id, camera_id: "c", rule_type: "intrusion", severity: 3, priority };
}

function queueOf(...events: QueueEvent[]): Map<string, Alert> {
  return events.reduce((alerts, event) => applyEvent(alerts, "raised", event), new Map<string, Alert>());
}

describe("the alarm queue", () => {
  it("orders by priority, then the oldest first", () => {
    const alerts = queueOf(
      raised("low-old", 10, "2026-12-01T10:00:00Z"),
      raised("high-new", 90, "2026-12-01T10:05:00Z"),
      raised("high-old", 90, "2026-12-01T10:01:00Z"),
      raised("mid", 50, "2026-12-01T09:00:00Z"),
    );
    expect(ordered(alerts).map((a) => a.id)).toEqual(["high-old", "high-new", "mid", "low-old"]);
  });

  it("shows a raised alert at once and ignores a repeated raise", () => {
    const once = queueOf(raised("a", 50, "2026-12-01T10:00:00Z"));
    const twice = applyEvent(once, "raised", { ...raised("a", 99, "2026-12-01T10:00:09Z") });
    expect(twice.get("a")?.priority).toBe(50);
    expect(twice.get("a")?.state).toBe("new");
  });

  it("follows state changes and drops dismissed and closed alerts", () => {
    let alerts = queueOf(raised("a", 50, "2026-12-01T10:00:00Z"), raised("b", 50, "2026-12-01T10:00:01Z"));
    alerts = applyEvent(alerts, "state_changed", { ...raised("a", 0, "x"), to_state: "claimed", actor_id: "op-1" });
    expect(alerts.get("a")).toMatchObject({ state: "claimed", claimed_by: "op-1" });
    alerts = applyEvent(alerts, "state_changed", { ...raised("a", 0, "x"), to_state: "new" });
    expect(alerts.get("a")).toMatchObject({ state: "new", claimed_by: null });
    alerts = applyEvent(alerts, "state_changed", { ...raised("a", 0, "x"), to_state: "dismissed" });
    alerts = applyEvent(alerts, "state_changed", { ...raised("b", 0, "x"), to_state: "closed" });
    expect(alerts.size).toBe(0);
  });

  it("attaches the clip and raises the phone prompt on escalation", () => {
    let alerts = queueOf(raised("a", 50, "2026-12-01T10:00:00Z"));
    expect(alerts.get("a")?.clip_status).toBe("pending");
    alerts = applyEvent(alerts, "clip_attached", { ...raised("a", 0, "x"), clip_id: "clip-1" });
    expect(alerts.get("a")).toMatchObject({ clip_status: "attached", clip_id: "clip-1" });
    alerts = applyEvent(alerts, "escalation_raised", { ...raised("a", 0, "2026-12-01T10:03:00Z"), action: "repush_next_officer" });
    expect(alerts.get("a")?.call_force_prompt_at).toBeNull();
    alerts = applyEvent(alerts, "escalation_raised", { ...raised("a", 0, "2026-12-01T10:04:00Z"), action: "call_force_by_phone" });
    expect(alerts.get("a")?.call_force_prompt_at).toBe("2026-12-01T10:04:00Z");
  });

  it("ignores events about alerts it does not hold", () => {
    const alerts = applyEvent(new Map(), "state_changed", { ...raised("z", 0, "x"), to_state: "claimed" });
    expect(alerts.size).toBe(0);
  });

  it("counts the claim SLA down, then overdue, and stops once claimed", () => {
    const alert: Alert = { ...alertFromRaised(raised("a", 50, "2026-12-01T10:00:00Z")), sla_claim_due_at: "2026-12-01T10:02:00Z" };
    expect(claimTimeLeft(alert, Date.parse("2026-12-01T10:01:30Z"))).toBe(30_000);
    expect(claimTimeLeft(alert, Date.parse("2026-12-01T10:02:10Z"))).toBe(-10_000);
    expect(claimTimeLeft({ ...alert, state: "claimed" }, Date.parse("2026-12-01T10:02:10Z"))).toBeNull();
  });

  it("keeps what the stream said while a list was on its way, and takes the list for the rest", () => {
    const listed = (id: string, state: string) => ({ ...alertFromRaised(raised(id, 40, "2026-12-01T09:00:00Z")), state });
    // Held: "a" (claimed by the stream meanwhile), "b" (listed earlier, closed while the stream was away), "c" (raised
    // on the stream meanwhile); the list, read before those events, still has "a" new and does not know "c".
    let held = queueOf(raised("a", 40, "2026-12-01T09:00:00Z"), raised("b", 40, "2026-12-01T09:00:01Z"),
                       raised("c", 40, "2026-12-01T09:00:02Z"));
    held = applyEvent(held, "state_changed", { ...raised("a", 0, "x"), to_state: "claimed", actor_id: "op-1" });
    const list = { items: [listed("a", "new"), listed("d", "verified")], complete: true };
    const merged = mergeSnapshot(held, list, new Set(["a", "c"]));
    expect([...merged.keys()].sort()).toEqual(["a", "c", "d"]);
    expect(merged.get("a")?.state).toBe("claimed");
    expect(merged.get("d")?.state).toBe("verified");
    // A list cut at its limit says nothing of the alerts it left out: "b" stays.
    expect([...mergeSnapshot(held, { ...list, complete: false }, new Set(["a", "c"])).keys()].sort())
      .toEqual(["a", "b", "c", "d"]);
    // Nothing said by the stream meanwhile: the list's version wins.
    expect(mergeSnapshot(held, list, new Set()).get("a")?.state).toBe("new");
  });

  it("keeps an alert read again while it is open, and drops it once closed", () => {
    const alert = alertFromRaised(raised("a", 40, "2026-12-01T09:00:00Z"));
    const held = withAlert(new Map(), { ...alert, state: "verified" });
    expect(held.get("a")?.state).toBe("verified");
    expect(withAlert(held, { ...alert, state: "closed" }).size).toBe(0);
  });
});
