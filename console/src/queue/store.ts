// The alarm queue's state, kept from the API's list and the live stream's events: pure functions, tested alone.
import type { components } from "../api/schema";

export type Alert = components["schemas"]["Alert"];

export const OPEN_STATES = ["new", "claimed", "verified", "dispatched"] as const;

/** A live-queue event as the stream sends it (the event's JSON); only the fields the queue reads. */
export interface QueueEvent {
  type?: string;
  tenant_id: string;
  occurred_at: string;
  alert_id: string;
  camera_id?: string;
  site_id?: string | null;
  insee_code?: string | null;
  rule_id?: string | null;
  rule_type?: string;
  legal_event_type?: string | null;
  severity?: number;
  priority?: number;
  snapshot_key?: string | null;
  first_seen_at?: string | null;
  to_state?: string;
  actor_id?: string | null;
  verdict?: string | null;
  reason?: string | null;
  clip_id?: string;
  action?: string;
  dispatch_id?: string;
}

/** Priority first (higher first), then age (the oldest first): the operator takes the top. */
export function compareAlerts(a: Alert, b: Alert): number {
  return b.priority - a.priority || Date.parse(a.raised_at) - Date.parse(b.raised_at) || a.id.localeCompare(b.id);
}

export function ordered(alerts: ReadonlyMap<string, Alert>): Alert[] {
  return [...alerts.values()].sort(compareAlerts);
}

const CLAIM_SLA_FALLBACK_MS = 120_000;

/** An alert as the `raised` event describes it, shown at once; the full record replaces it when it arrives. */
export function alertFromRaised(event: QueueEvent): Alert {
  const raisedAt = event.occurred_at;
  return {
    id: event.alert_id,
    tenant_id: event.tenant_id,
    camera_id: event.camera_id ?? "",
    site_id: event.site_id ?? "",
    insee_code: event.insee_code ?? "",
    rule_id: event.rule_id ?? null,
    rule_type: event.rule_type ?? "",
    legal_event_type: event.legal_event_type ?? null,
    severity: event.severity ?? 1,
    priority: event.priority ?? 0,
    state: "new",
    detail: "",
    snapshot_key: event.snapshot_key ?? null,
    clip_id: null,
    clip_status: "pending",
    occurrences: 1,
    first_seen_at: event.first_seen_at ?? raisedAt,
    last_seen_at: raisedAt,
    raised_at: raisedAt,
    sla_claim_due_at: new Date(Date.parse(raisedAt) + CLAIM_SLA_FALLBACK_MS).toISOString(),
    claimed_by: null,
    claimed_at: null,
    verified_by: null,
    verified_at: null,
    verdict: null,
    dismissed_reason: null,
    outcome: null,
    closed_at: null,
    auto_dispatched: false,
    call_force_prompt_at: null,
  };
}

/** The open alerts as the API listed them, requested once the live stream was following. */
export interface Snapshot {
  items: readonly Alert[];
  /** False when the list stopped at its limit: an alert held but not listed may still be open. */
  complete: boolean;
}

/**
 * The queue once a snapshot arrives. `touched` names the alerts the live stream spoke of since the snapshot was
 * requested: for those the stream is newer, so the queue keeps its own version (one it did not hold is for the caller
 * to read again). Every other alert takes the snapshot's version; one held but absent from a complete snapshot was
 * closed while the stream was away, and goes.
 */
export function mergeSnapshot(
  held: ReadonlyMap<string, Alert>, snapshot: Snapshot, touched: ReadonlySet<string>,
): Map<string, Alert> {
  const alerts = new Map<string, Alert>();
  const listed = new Set(snapshot.items.map((alert) => alert.id));
  for (const [id, alert] of held) {
    if (touched.has(id) || (!snapshot.complete && !listed.has(id))) alerts.set(id, alert);
  }
  for (const alert of snapshot.items) {
    if (!touched.has(alert.id)) alerts.set(alert.id, alert);
  }
  return alerts;
}

/** The queue once an alert was read again: kept while open, gone once closed or dismissed. */
export function withAlert(held: ReadonlyMap<string, Alert>, alert: Alert): Map<string, Alert> {
  const alerts = new Map(held);
  if ((OPEN_STATES as readonly string[]).includes(alert.state)) alerts.set(alert.id, alert);
  else alerts.delete(alert.id);
  return alerts;
}

/** The queue after one live event (a new map when anything changed; the same one otherwise). */
export function applyEvent(alerts: ReadonlyMap<string, Alert>, kind: string, event: QueueEvent): Map<string, Alert> {
  const next = new Map(alerts);
  const current = alerts.get(event.alert_id);
  switch (kind) {
    case "raised":
      if (!current) next.set(event.alert_id, alertFromRaised(event));
      break;
    case "state_changed": {
      if (!current) break;
      const state = event.to_state ?? current.state;
      if (!(OPEN_STATES as readonly string[]).includes(state)) {
        next.delete(event.alert_id);
        break;
      }
      next.set(event.alert_id, {
        ...current,
        state,
        claimed_by: state === "new" ? null : state === "claimed" ? (event.actor_id ?? current.claimed_by) : current.claimed_by,
        claimed_at: state === "new" ? null : current.claimed_at,
      });
      break;
    }
    case "clip_attached":
      if (current) next.set(event.alert_id, { ...current, clip_id: event.clip_id ?? null, clip_status: "attached" });
      break;
    case "clip_unavailable":
      if (current) next.set(event.alert_id, { ...current, clip_status: "unavailable" });
      break;
    case "escalation_raised":
      if (current && event.action === "call_force_by_phone") {
        next.set(event.alert_id, { ...current, call_force_prompt_at: event.occurred_at });
      }
      break;
    default:
      return next;
  }
  return next;
}

/** Milliseconds left to claim (negative: overdue); null once claimed. */
export function claimTimeLeft(alert: Alert, now: number): number | null {
  if (alert.state !== "new") return null;
  return Date.parse(alert.sla_claim_due_at) - now;
}
