// The live alarm queue: open alerts by priority then age, kept current by the live stream (no reload), and the
// selected alert's panel. Keyboard: j/k move, c claim, r release, v verify, x dismiss, d dispatch.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import { useFormErrors } from "../components/use-problem";
import { formatTime } from "../format";
import { t, tDynamic } from "../i18n/fr";
import { AlertPanel, SlaCountdown, type PanelForm } from "../queue/alert-panel";
import { applyEvent, mergeSnapshot, OPEN_STATES, ordered, withAlert, type Alert, type QueueEvent } from "../queue/store";
import { followQueue } from "../queue/stream";

function priorityClass(alert: Alert): string {
  return alert.priority >= 70 ? "priority-high" : alert.priority >= 40 ? "priority-medium" : "priority-low";
}

/** The shortcut a key press means, or null (typing in a field is never a shortcut). */
export function shortcutFor(event: KeyboardEvent): string | null {
  const target = event.target as HTMLElement | null;
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return null;
  return ["j", "k", "c", "r", "v", "x", "d"].includes(event.key) ? event.key : null;
}

export function QueuePage() {
  const [alerts, setAlerts] = useState<Map<string, Alert>>(new Map());
  const [selected, setSelected] = useState<string | null>(null);
  const [status, setStatus] = useState<"live" | "reconnecting">("reconnecting");
  const [form, setForm] = useState<PanelForm>(null);
  const [now, setNow] = useState(Date.now());
  const [version, setVersion] = useState(0);
  const errors = useFormErrors([]);
  const list = ordered(alerts);
  const listRef = useRef(list);
  listRef.current = list;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;

  useEffect(() => {
    const controller = new AbortController();
    // The open alerts are listed at once (shown even while the stream is down) and again each time the stream is
    // ready: listed after the server follows, nothing raised at connection or during a drop is missed. What the
    // stream says while a list is on its way is newer than the list (mergeSnapshot).
    let requested = 0;
    let touched = new Set<string>();
    let toReread = new Set<string>();
    // Events seen per alert: a record read while another event of its alert arrived may predate that event.
    const eventsSeen = new Map<string, number>();
    const readAgain = (alertId: string): void => {
      const seen = eventsSeen.get(alertId) ?? 0;
      void api.GET("/alerts/{alert_id}", { params: { path: { alert_id: alertId } } })
        .then(unwrap)
        .then((detail) => {
          if (controller.signal.aborted) return;
          if ((eventsSeen.get(alertId) ?? 0) !== seen) readAgain(alertId);
          else setAlerts((previous) => withAlert(previous, detail.alert));
        })
        .catch(() => undefined);
    };
    const listOpenAlerts = (): void => {
      const request = ++requested;
      const spokenOf = (touched = new Set());
      const unknown = (toReread = new Set());
      void api.GET("/alerts", { params: { query: { states: [...OPEN_STATES], limit: 200 } } })
        .then(unwrap)
        .then((page) => {
          if (request !== requested || controller.signal.aborted) return; // a later list is on its way
          setAlerts((previous) => mergeSnapshot(previous, { items: page.items, complete: page.next_cursor === null },
                                                spokenOf));
          // Alerts the stream changed while the list was read: each read again (the newest record, and the only one
          // for an alert the queue did not hold, whose change the queue could not apply).
          for (const alertId of unknown) readAgain(alertId);
        })
        .catch(errors.capture);
    };
    listOpenAlerts();
    followQueue({
      onStatus: setStatus,
      onReady: listOpenAlerts,
      onEvent(kind, data) {
        const event = data as QueueEvent;
        touched.add(event.alert_id);
        eventsSeen.set(event.alert_id, (eventsSeen.get(event.alert_id) ?? 0) + 1);
        if (kind !== "raised") toReread.add(event.alert_id);
        setAlerts((previous) => applyEvent(previous, kind, event));
        // A raised alert is shown at once from its event; the full record (SLA due time, detail) follows.
        if (kind === "raised") readAgain(event.alert_id);
        if (event.alert_id === selectedRef.current && kind !== "raised") setVersion((v) => v + 1);
      },
    }, controller.signal);
    const ticker = setInterval(() => setNow(Date.now()), 1_000);
    return () => {
      controller.abort();
      clearInterval(ticker);
    };
  }, []);

  useEffect(() => {
    function onKey(event: KeyboardEvent): void {
      const key = shortcutFor(event);
      if (!key) return;
      const items = listRef.current;
      const index = items.findIndex((alert) => alert.id === selectedRef.current);
      event.preventDefault();
      if (key === "j" || key === "k") {
        const next = items[Math.min(items.length - 1, Math.max(0, index + (key === "j" ? 1 : -1)))];
        if (next) {
          setSelected(next.id);
          setForm(null);
          document.getElementById(`alert-${next.id}`)?.focus();
        }
        return;
      }
      const button: Record<string, string> = { c: "claim", r: "release" };
      if (key in button) {
        document.querySelector<HTMLButtonElement>(`[data-shortcut="${button[key]}"]`)?.click();
        return;
      }
      setForm(key === "v" ? "verify" : key === "x" ? "dismiss" : "dispatch");
    }
    globalThis.addEventListener("keydown", onKey);
    return () => globalThis.removeEventListener("keydown", onKey);
  }, []);

  const current = selected ? alerts.get(selected) : undefined;
  return (
    <section aria-labelledby="queue-title">
      <div class="toolbar">
        <h1 id="queue-title">{t("queue.title")}</h1>
        <span class={status === "live" ? "status-live" : "status-reconnecting"} role="status" data-stream={status}>
          {status === "live" ? t("queue.live") : t("queue.reconnecting")}
        </span>
        <span>{t("queue.count", { n: list.length })}</span>
      </div>
      <p class="note">{t("queue.shortcuts")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="queue-layout">
        <div>
          {list.length === 0 ? <p>{t("queue.empty")}</p> : null}
          <ul class="queue-list" aria-label={t("queue.title")}>
            {list.map((alert) => (
              <li key={alert.id}>
                <button type="button" id={`alert-${alert.id}`} data-first-seen={alert.first_seen_at} class={`queue-item ${priorityClass(alert)}`}
                        aria-current={alert.id === selected ? "true" : undefined} data-alert-id={alert.id}
                        onClick={() => { setSelected(alert.id); setForm(null); }}>
                  <strong>{tDynamic("rule", alert.rule_type)}</strong> <span class="badge">{tDynamic("state", alert.state)}</span>
                  <span class="meta">
                    {t("queue.priority", { p: alert.priority })} · {formatTime(alert.raised_at)} · {alert.insee_code}
                  </span>
                  <span class="meta"><SlaCountdown alert={alert} now={now} /></span>
                </button>
              </li>
            ))}
          </ul>
        </div>
        <div>
          {current ? (
            <AlertPanel alert={current} now={now} form={form} setForm={setForm} version={version}
                        onChanged={(alert) => setAlerts((previous) => withAlert(previous, alert))} />
          ) : (
            <p>{t("queue.select")}</p>
          )}
        </div>
      </div>
    </section>
  );
}
