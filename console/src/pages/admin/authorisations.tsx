// A camera's prefectoral authorisations: order number, purposes, validity, the event types it grants and the scanned
// order (filed as a PDF, downloaded through the API, journaled); the department records new ones.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import { currentSession } from "../../auth/session";
import { ApiProblem, toProblem } from "../../api/problem";
import { describedBy, Field } from "../../components/field";
import { useStillShown } from "../../components/use-current";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { type Authorisation, formatDate, isDepartmentAdmin } from "./data";
import { saveDocument } from "../../components/download";

export const PURPOSES = [
  "public_buildings", "national_defence", "traffic_regulation", "traffic_offences", "crime_prevention",
  "terrorism_prevention", "natural_technological_risks", "rescue_fire", "amusement_parks", "vehicle_insurance",
  "illegal_dumping",
] as const;
export const EVENT_TYPES = [
  "abandoned_object", "weapon", "wrong_way", "forbidden_zone", "person_on_ground", "crowd_movement",
  "excessive_density", "fire_start",
] as const;
const FIELDS = ["prefectoral_order_number", "purposes", "valid_from", "valid_until", "max_retention_days",
                "authorised_viewers", "event_types"] as const;

export function Authorisations(props: { cameraId: string; onChange: () => void }) {
  const [list, setList] = useState<Authorisation[] | null>(null);
  const errors = useFormErrors([]);

  const stillShown = useStillShown(props.cameraId);
  const reload = async (): Promise<void> => {
    const cameraId = props.cameraId;
    try {
      const found = unwrap(await api.GET("/cameras/{camera_id}/authorisations", {
        params: { path: { camera_id: cameraId } },
      }));
      // Another camera opened meanwhile: its authorisations, not this one's, belong under its name.
      if (stillShown(cameraId)) setList(found);
    } catch (error) {
      if (stillShown(cameraId)) errors.capture(error);
    }
  };
  useEffect(() => {
    setList(null);
    void reload();
  }, [props.cameraId]);

  return (
    <section class="inline-form" aria-labelledby="authz-title">
      <h2 id="authz-title">{t("admin.cameras.authorisations")}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {list === null ? <p aria-busy="true">{t("admin.loading")}</p> : list.length === 0 ? <p>{t("admin.authz.none")}</p> : (
        <table class="data" id="authorisations">
          <thead>
            <tr>
              <th scope="col">{t("admin.authz.order")}</th>
              <th scope="col">{t("admin.authz.purposes")}</th>
              <th scope="col">{t("admin.authz.validity")}</th>
              <th scope="col">{t("admin.authz.eventTypes")}</th>
              <th scope="col">{t("admin.authz.scan")}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((row) => (
              <tr key={row.id} data-authorisation-id={row.id}>
                <th scope="row">
                  {row.prefectoral_order_number}
                  {row.department_recorded ? null : <p class="warning">{t("admin.authz.notDepartment")}</p>}
                </th>
                <td><ul class="plain">{row.purposes.map((p) => <li key={p}>{tDynamic("admin.purpose", p)}</li>)}</ul></td>
                <td>{formatDate(row.valid_from)} – {formatDate(row.valid_until)}</td>
                <td>
                  <ul class="plain">
                    {row.event_types.map((grant) => (
                      <li key={grant.event_type}>
                        {tDynamic("admin.eventType", grant.event_type)} ({grant.legal_basis},{" "}
                        {formatDate(grant.valid_from)} – {formatDate(grant.valid_until)})
                      </li>
                    ))}
                  </ul>
                </td>
                <td><OrderScan authorisation={row} onFiled={() => void reload()} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {isDepartmentAdmin() ? (
        <AuthorisationForm cameraId={props.cameraId} onCreated={() => { void reload(); props.onChange(); }} />
      ) : <p>{t("admin.authz.departmentOnly")}</p>}
    </section>
  );
}

function OrderScan(props: { authorisation: Authorisation; onFiled: () => void }) {
  const { authorisation } = props;
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const inputId = `scan-${authorisation.id}`;

  async function upload(file: File): Promise<void> {
    setMessage(null);
    setError(null);
    // The upload is the PDF itself, not JSON: sent as it is, with the bearer of the session.
    const response = await fetch(`/authorisations/${authorisation.id}/order-scan`, {
      method: "PUT", body: file,
      headers: { "Content-Type": "application/pdf", "X-Vigie-Console": "1",
                 Authorization: `Bearer ${currentSession()?.accessToken ?? ""}` },
    });
    if (response.ok) {
      setMessage(t("admin.authz.scanSaved"));
      props.onFiled();
    } else {
      setError(toProblem(await response.json().catch(() => null), response.status).detail);
    }
  }

  async function download(): Promise<void> {
    setError(null);
    try {
      const result = await api.GET("/authorisations/{authorisation_id}/order-scan", {
        params: { path: { authorisation_id: authorisation.id } }, parseAs: "blob",
      });
      saveDocument(unwrap(result) as Blob, `arrete-prefectoral-${authorisation.prefectoral_order_number}.pdf`);
    } catch (failure) {
      setError(failure instanceof ApiProblem ? failure.problem.detail : t("error.network"));
    }
  }

  const scan = authorisation.order_scan;
  return (
    <div class="order-scan">
      <p>{scan ? t("admin.authz.scanFiled", { t: formatDateTime(scan.uploaded_at),
                                               size: Math.ceil(scan.size_bytes / 1024) })
               : t("admin.authz.scanMissing")}</p>
      {scan ? <button type="button" class="secondary" onClick={() => void download()}>{t("admin.authz.scanDownload")}</button> : null}
      {isDepartmentAdmin() ? (
        <Field id={inputId} label={t("admin.authz.scanUpload")} error={error ?? undefined}>
          <input id={inputId} type="file" accept="application/pdf" {...describedBy(inputId, error ?? undefined)}
                 onChange={(e) => {
                   const file = (e.currentTarget as HTMLInputElement).files?.[0];
                   if (file) void upload(file);
                 }} />
        </Field>
      ) : error ? <p class="field-error" role="alert">{error}</p> : null}
      {message ? <p role="status">{message}</p> : null}
    </div>
  );
}

function isoDay(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

function AuthorisationForm(props: { cameraId: string; onCreated: () => void }) {
  const [order, setOrder] = useState("");
  const [purposes, setPurposes] = useState<string[]>([]);
  const [validFrom, setValidFrom] = useState(isoDay(0));
  const [validUntil, setValidUntil] = useState(isoDay(5 * 365 - 2));
  const [retention, setRetention] = useState("30");
  const [viewers, setViewers] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [basis, setBasis] = useState(t("admin.authz.defaultBasis"));
  const [created, setCreated] = useState<string | null>(null);
  const errors = useFormErrors(FIELDS);

  const toggle = (list: string[], value: string, on: boolean): string[] =>
    on ? [...list.filter((v) => v !== value), value] : list.filter((v) => v !== value);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    setCreated(null);
    try {
      const saved = unwrap(await api.POST("/cameras/{camera_id}/authorisations", {
        params: { path: { camera_id: props.cameraId } },
        body: {
          prefectoral_order_number: order.trim(), purposes, valid_from: validFrom, valid_until: validUntil,
          max_retention_days: Number(retention), ...(viewers.trim() ? { authorised_viewers: viewers.trim() } : {}),
          event_types: events.map((type) => ({ event_type: type, legal_basis: basis, valid_from: validFrom,
                                               valid_until: validUntil })),
        },
      }));
      errors.clear();
      setCreated(t("admin.authz.created", { order: saved.prefectoral_order_number }));
      setOrder("");
      props.onCreated();
    } catch (error) {
      errors.capture(error);
    }
  }

  const eventError = errors.field("event_types");
  return (
    <form aria-labelledby="authz-form-title" onSubmit={(e) => void submit(e)} noValidate>
      <h3 id="authz-form-title">{t("admin.authz.createTitle")}</h3>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <Field id="authz-order" label={t("admin.authz.order")} error={errors.field("prefectoral_order_number")}>
        <input id="authz-order" value={order} onInput={(e) => setOrder((e.currentTarget as HTMLInputElement).value)}
               {...describedBy("authz-order", errors.field("prefectoral_order_number"))} />
      </Field>
      <fieldset id="authz-purposes" aria-describedby={errors.field("purposes") ? "authz-purposes-error" : undefined}>
        <legend>{t("admin.authz.purposes")}</legend>
        <div class="checks">
          {PURPOSES.map((purpose) => (
            <div class="check" key={purpose}>
              <input id={`purpose-${purpose}`} type="checkbox" checked={purposes.includes(purpose)}
                     onChange={(e) => setPurposes(toggle(purposes, purpose, (e.currentTarget as HTMLInputElement).checked))} />
              <label for={`purpose-${purpose}`}>{tDynamic("admin.purpose", purpose)}</label>
            </div>
          ))}
        </div>
        {errors.field("purposes") ? <p class="field-error" id="authz-purposes-error" role="alert">{errors.field("purposes")}</p> : null}
      </fieldset>
      <div class="toolbar">
        <Field id="authz-from" label={t("admin.authz.validFrom")} error={errors.field("valid_from")}>
          <input id="authz-from" type="date" value={validFrom}
                 onInput={(e) => setValidFrom((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("authz-from", errors.field("valid_from"))} />
        </Field>
        <Field id="authz-until" label={t("admin.authz.validUntil")} error={errors.field("valid_until")}>
          <input id="authz-until" type="date" value={validUntil}
                 onInput={(e) => setValidUntil((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("authz-until", errors.field("valid_until"))} />
        </Field>
        <Field id="authz-retention" label={t("admin.authz.maxRetention")} error={errors.field("max_retention_days")}>
          <input id="authz-retention" type="number" min={1} value={retention}
                 onInput={(e) => setRetention((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("authz-retention", errors.field("max_retention_days"))} />
        </Field>
      </div>
      <Field id="authz-viewers" label={t("admin.authz.viewers")} error={errors.field("authorised_viewers")}>
        <input id="authz-viewers" value={viewers} onInput={(e) => setViewers((e.currentTarget as HTMLInputElement).value)}
               {...describedBy("authz-viewers", errors.field("authorised_viewers"))} />
      </Field>
      <fieldset id="authz-events">
        <legend>{t("admin.authz.eventTypes")}</legend>
        <div class="checks">
          {EVENT_TYPES.map((type) => (
            <div class="check" key={type}>
              <input id={`event-${type}`} type="checkbox" checked={events.includes(type)}
                     onChange={(e) => setEvents(toggle(events, type, (e.currentTarget as HTMLInputElement).checked))} />
              <label for={`event-${type}`}>{tDynamic("admin.eventType", type)}</label>
            </div>
          ))}
        </div>
        {events.length > 0 ? (
          <Field id="authz-basis" label={t("admin.authz.legalBasis", { type: events.map((e) => tDynamic("admin.eventType", e)).join(", ") })}
                 error={eventError}>
            <input id="authz-basis" value={basis} onInput={(e) => setBasis((e.currentTarget as HTMLInputElement).value)}
                   {...describedBy("authz-basis", eventError)} />
          </Field>
        ) : null}
      </fieldset>
      <div class="actions">
        <button type="submit">{t("admin.authz.create")}</button>
        {created ? <span role="status">{created}</span> : null}
      </div>
    </form>
  );
}
