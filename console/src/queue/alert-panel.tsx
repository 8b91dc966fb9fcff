// One alert, worked: claim or release, verify on images, dismiss with a reason, dispatch to the forces the routing
// proposes; the procedure checklist, the responders' statuses (live) and the prompt to call the force by phone.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { AlertMedia } from "../components/alert-media";
import { describedBy, Field } from "../components/field";
import { useStillShown } from "../components/use-current";
import { useFormErrors } from "../components/use-problem";
import { formatDuration, formatTime } from "../format";
import { t, tDynamic } from "../i18n/fr";
import { claimTimeLeft, type Alert } from "./store";

type Detail = components["schemas"]["AlertDetail"];
type Responders = components["schemas"]["Responders"];
type Force = components["schemas"]["ForceRecommendation"];
export type PanelForm = "verify" | "dismiss" | "dispatch" | null;

const DISMISS_REASONS = ["false_positive", "known_activity", "authorised_presence", "duplicate", "test",
  "out_of_perimeter", "other"] as const;
const URGENCIES = ["immediate", "urgent", "routine"] as const;
const RESPONDER_STEPS = ["delivered", "acknowledged", "en_route", "on_scene", "closed"];

/** The furthest status each dispatch's responders reported (delivered → acknowledged → en route → on scene → closed). */
export function latestStatus(responders: Responders, dispatchId: string, fallback: string): string {
  let best = -1;
  let status = fallback;
  for (const item of responders.statuses) {
    const rank = RESPONDER_STEPS.indexOf(item.status);
    if (item.dispatch_id === dispatchId && rank > best) {
      best = rank;
      status = item.status;
    }
  }
  return status;
}

export function SlaCountdown(props: { alert: Alert; now: number }) {
  const left = claimTimeLeft(props.alert, props.now);
  if (left === null) return null;
  return left >= 0 ? (
    <span class="sla">{t("queue.slaLeft", { s: formatDuration(left / 1000) })}</span>
  ) : (
    <span class="sla overdue">{t("queue.slaOverdue", { s: formatDuration(-left / 1000) })}</span>
  );
}

export function AlertPanel(props: {
  alert: Alert;
  now: number;
  form: PanelForm;
  setForm: (form: PanelForm) => void;
  onChanged: (alert: Alert) => void;
  version: number;
}) {
  const { alert, form, setForm } = props;
  const [detail, setDetail] = useState<Detail | null>(null);
  const [responders, setResponders] = useState<Responders | null>(null);
  const [forces, setForces] = useState<Force[]>([]);
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(["motive", "media", "reason", "note", "force_ids", "urgency"]);

  const stillShown = useStillShown(alert.id);

  async function loadDetail(): Promise<void> {
    const alertId = alert.id;
    const [loaded, dispatched] = await Promise.all([
      api.GET("/alerts/{alert_id}", { params: { path: { alert_id: alertId } } }).then(unwrap),
      api.GET("/alerts/{alert_id}/responders", { params: { path: { alert_id: alertId } } }).then(unwrap),
    ]);
    // The operator moved to another alert meanwhile: this one's detail must not land on its panel.
    if (!stillShown(alertId)) return;
    setDetail(loaded);
    setResponders(dispatched);
    props.onChanged(loaded.alert);
  }

  // Another alert: nothing of the previous one stays on screen. A new version of this one: the panel keeps what it
  // shows until the reload replaces it, rather than flickering back to the queue's summary.
  useEffect(() => {
    setDetail(null);
    setResponders(null);
    setForces([]);
    errors.clear();
  }, [alert.id]);
  useEffect(() => {
    void loadDetail().catch(errors.capture);
  }, [alert.id, props.version]);

  // Responders report from their phones: each new status arrives on the live queue as a `responder_status` event of
  // this alert, which bumps `version` and reloads the panel (no polling).

  const current = detail?.alert ?? alert;
  const dispatches = responders?.dispatches ?? detail?.dispatches ?? [];
  const escalated = current.call_force_prompt_at !== null || dispatches.some((d) => d.call_force_prompt_at !== null);

  // The forces (and their phone numbers) for the dispatch form, and for the prompt to call them when escalated.
  // They belong to the alert, not to a version of it: the events that reload the panel (its own state change, a
  // responder's status) must not empty an open dispatch form or the escalation prompt; they go with the alert only.
  useEffect(() => {
    if (form !== "dispatch" && !escalated) return;
    const alertId = alert.id;
    void api.GET("/alerts/{alert_id}/competent-forces", { params: { path: { alert_id: alertId } } })
      .then(unwrap).then((found) => { if (stillShown(alertId)) setForces(found); }).catch(errors.capture);
  }, [form, alert.id, escalated]);

  async function act(run: () => Promise<unknown>): Promise<void> {
    setBusy(true);
    errors.clear();
    try {
      await run();
      setForm(null);
      await loadDetail();
    } catch (error) {
      errors.capture(error);
    } finally {
      setBusy(false);
    }
  }

  const path = { params: { path: { alert_id: alert.id } } };
  const claim = () => act(() => api.POST("/alerts/{alert_id}/claim", path).then(unwrap));
  const release = () => act(() => api.POST("/alerts/{alert_id}/release", path).then(unwrap));

  function submitVerify(event: Event): void {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const media = String(data.get("media") ?? "clip") as "live" | "snapshot" | "clip";
    void act(() => api.POST("/alerts/{alert_id}/verify", { ...path, body: { media, motive: String(data.get("motive") ?? "") } }).then(unwrap));
  }

  function submitDismiss(event: Event): void {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const reason = String(data.get("reason")) as (typeof DISMISS_REASONS)[number];
    const note = String(data.get("note") ?? "").trim();
    void act(() => api.POST("/alerts/{alert_id}/dismiss", { ...path, body: { reason, note: note || null } }).then(unwrap));
  }

  function submitDispatch(event: Event): void {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const forceIds = data.getAll("force_ids").map(String);
    const urgency = String(data.get("urgency")) as (typeof URGENCIES)[number];
    void act(() => api.POST("/alerts/{alert_id}/dispatch", { ...path, body: { force_ids: forceIds, urgency, ttl_s: 300 } }).then(unwrap));
  }

  async function markStep(step: string): Promise<void> {
    errors.clear();
    try {
      setDetail(unwrap(await api.POST("/alerts/{alert_id}/sop-steps", { ...path, body: { step } })));
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <article class="detail-panel" aria-labelledby="alert-title" data-alert-id={alert.id} data-state={current.state}>
      <h2 id="alert-title">
        {tDynamic("rule", current.rule_type)} <span class="badge">{tDynamic("state", current.state)}</span>
      </h2>
      <p>
        {t("queue.priority", { p: current.priority })} · {t("queue.severity", { s: current.severity })} ·{" "}
        {t("queue.raisedAt", { t: formatTime(current.raised_at) })} · {current.insee_code}{" "}
        <SlaCountdown alert={current} now={props.now} />
      </p>
      {current.detail ? <p>{current.detail}</p> : null}
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="actions">
        {current.state === "new" ? (
          <button type="button" data-shortcut="claim" disabled={busy} onClick={() => void claim()}>{t("action.claim")}</button>
        ) : null}
        {current.state === "claimed" ? (
          <>
            <button type="button" class="secondary" data-shortcut="release" disabled={busy} onClick={() => void release()}>{t("action.release")}</button>
            <button type="button" disabled={busy} onClick={() => setForm("verify")}>{t("action.verify")}</button>
          </>
        ) : null}
        {current.state === "verified" ? (
          <button type="button" disabled={busy} onClick={() => setForm("dispatch")}>{t("action.dispatch")}</button>
        ) : null}
        {current.state === "claimed" || current.state === "verified" ? (
          <button type="button" class="danger" disabled={busy} onClick={() => setForm("dismiss")}>{t("action.dismiss")}</button>
        ) : null}
      </div>

      {form === "verify" ? (
        <form class="inline-form" onSubmit={submitVerify} noValidate aria-labelledby="verify-title">
          <h3 id="verify-title">{t("verify.title")}</h3>
          <fieldset>
            <legend>{t("verify.media")}</legend>
            {(["clip", "snapshot", "live"] as const).map((media, index) => (
              <label key={media}>
                <input type="radio" name="media" value={media} defaultChecked={index === 0} /> {t(`verify.media.${media}`)}
              </label>
            ))}
          </fieldset>
          <Field id="verify-motive" label={t("verify.motive")} error={errors.field("motive")}>
            <input id="verify-motive" name="motive" autoFocus {...describedBy("verify-motive", errors.field("motive"))} />
          </Field>
          <button type="submit" disabled={busy}>{t("verify.submit")}</button>{" "}
          <button type="button" class="secondary" onClick={() => setForm(null)}>{t("action.cancel")}</button>
        </form>
      ) : null}

      {form === "dismiss" ? (
        <form class="inline-form" onSubmit={submitDismiss} noValidate aria-labelledby="dismiss-title">
          <h3 id="dismiss-title">{t("dismiss.title")}</h3>
          <Field id="dismiss-reason" label={t("dismiss.reason")} error={errors.field("reason")}>
            <select id="dismiss-reason" name="reason" autoFocus {...describedBy("dismiss-reason", errors.field("reason"))}>
              {DISMISS_REASONS.map((reason) => (
                <option key={reason} value={reason}>{t(`dismiss.reason.${reason}`)}</option>
              ))}
            </select>
          </Field>
          <Field id="dismiss-note" label={t("dismiss.note")} error={errors.field("note")}>
            <input id="dismiss-note" name="note" {...describedBy("dismiss-note", errors.field("note"))} />
          </Field>
          <button type="submit" class="danger" disabled={busy}>{t("dismiss.submit")}</button>{" "}
          <button type="button" class="secondary" onClick={() => setForm(null)}>{t("action.cancel")}</button>
        </form>
      ) : null}

      {form === "dispatch" ? (
        <form class="inline-form" onSubmit={submitDispatch} noValidate aria-labelledby="dispatch-title">
          <h3 id="dispatch-title">{t("dispatch.title")}</h3>
          <fieldset>
            <legend>{t("dispatch.forces")}</legend>
            {forces.length === 0 ? <p>{t("dispatch.none")}</p> : null}
            {forces.map((force) => (
              <label key={force.force_id} class="force-choice">
                <input type="checkbox" name="force_ids" value={force.force_id} defaultChecked /> {force.name}
                {force.phone ? ` — ${force.phone}` : ""}
              </label>
            ))}
            {errors.field("force_ids") ? <p class="field-error" role="alert">{errors.field("force_ids")}</p> : null}
          </fieldset>
          <Field id="dispatch-urgency" label={t("dispatch.urgency")} error={errors.field("urgency")}>
            <select id="dispatch-urgency" name="urgency">
              {URGENCIES.map((urgency) => (
                <option key={urgency} value={urgency}>{t(`dispatch.urgency.${urgency}`)}</option>
              ))}
            </select>
          </Field>
          <button type="submit" disabled={busy}>{t("dispatch.submit")}</button>{" "}
          <button type="button" class="secondary" onClick={() => setForm(null)}>{t("action.cancel")}</button>
          {forces.map((force) => (
            <p key={force.force_id} class="note">
              {force.phone ? t("dispatch.phone", { name: force.name, phone: force.phone }) : t("dispatch.phoneUnknown", { name: force.name })}
            </p>
          ))}
        </form>
      ) : null}

      <AlertMedia alert={current} />

      <section aria-labelledby="sop-title">
        <h2 id="sop-title">{t("sop.title")}</h2>
        {detail && detail.sop.length === 0 ? <p>{t("sop.none")}</p> : null}
        <ul class="sop">
          {(detail?.sop ?? []).map((step) => (
            <li key={step.step}>
              <label>
                <input type="checkbox" checked={Boolean(step.done_at)} disabled={Boolean(step.done_at)}
                       onChange={() => void markStep(step.step)} /> {tDynamic("sop.step", step.step)}
              </label>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="responders-title">
        <h2 id="responders-title">{t("responders.title")}</h2>
        {escalated ? (
          <div class="escalation" role="alert" data-testid="escalation">
            <p>{t("responders.escalate")}</p>
            {forces.map((force) => (
              <p key={force.force_id}>
                {force.phone ? t("dispatch.phone", { name: force.name, phone: force.phone }) : t("dispatch.phoneUnknown", { name: force.name })}
              </p>
            ))}
          </div>
        ) : null}
        {dispatches.length === 0 ? (
          <p>{t("responders.none")}</p>
        ) : (
          <table class="data">
            <tbody>
              {dispatches.map((dispatch) => {
                const status = responders ? latestStatus(responders, dispatch.id, dispatch.status) : dispatch.status;
                return (
                  <tr key={dispatch.id} data-dispatch-status={status}>
                    <th scope="row">{tDynamic("force", dispatch.force_kind)}</th>
                    <td>{tDynamic("dispatch.urgency", dispatch.urgency)}</td>
                    <td class="responder-status">{tDynamic("responders.status", status)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </article>
  );
}
