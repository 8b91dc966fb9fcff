// Transparency for the commune: every journaled access to its cameras' images (live, playback, alert snapshot or
// clip, export), with the person, the role they acted in, the camera, when, the period watched and the motive given.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { currentSession } from "../../auth/session";
import { describedBy, Field } from "../../components/field";
import { useStillShown } from "../../components/use-current";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";

type Access = components["schemas"]["ImageAccess"];
type Dashboard = components["schemas"]["CommuneDashboard"];

interface Filters {
  camera: string;
  since: string;
  until: string;
}

/** A date field's day as the start of that day in the browser's time zone, in ISO form (or nothing). */
function startOfDay(day: string): string | undefined {
  return day ? new Date(`${day}T00:00:00`).toISOString() : undefined;
}

function range(access: Access): string {
  if (!access.range_start) return "";
  const from = formatDateTime(access.range_start);
  return access.range_end ? t("mayor.accesses.rangeValue", { from, to: formatDateTime(access.range_end) })
                          : t("mayor.accesses.rangeFrom", { from });
}

export function MayorAccessesPage() {
  const tenantId = currentSession()?.tenantId ?? "";
  const [cameras, setCameras] = useState<Dashboard | null>(null);
  const [draft, setDraft] = useState<Filters>({ camera: "", since: "", until: "" });
  const [filters, setFilters] = useState<Filters>(draft);
  const [accesses, setAccesses] = useState<Access[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const errors = useFormErrors(["camera_id", "since", "until"]);

  const stillShown = useStillShown(filters);

  async function load(after: string | null): Promise<void> {
    const asked = filters;
    const since = startOfDay(filters.since);
    const until = startOfDay(filters.until);
    const query = {
      limit: 50, ...(after ? { cursor: after } : {}), ...(filters.camera ? { camera_id: filters.camera } : {}),
      ...(since ? { since } : {}), ...(until ? { until } : {}),
    };
    const page = unwrap(await api.GET("/tenants/{tenant_id}/image-accesses",
                                      { params: { path: { tenant_id: tenantId }, query } }));
    // Filters applied again meanwhile: the list shows the later ones' answer only.
    if (!stillShown(asked)) return;
    setAccesses((previous) => (after ? [...previous, ...page.items] : page.items));
    setCursor(page.next_cursor);
    setLoaded(true);
  }

  useEffect(() => {
    void api.GET("/tenants/{tenant_id}/dashboard", { params: { path: { tenant_id: tenantId } } }).then(unwrap)
      .then(setCameras).catch(errors.capture);
  }, []);
  useEffect(() => {
    errors.clear();
    void load(null).catch(errors.capture);
  }, [filters]);

  function apply(event: Event): void {
    event.preventDefault();
    setFilters({ ...draft });
  }

  return (
    <section aria-labelledby="mayor-accesses-title">
      <h1 id="mayor-accesses-title">
        {cameras ? t("mayor.accesses.title", { tenant: cameras.tenant_name }) : t("mayor.accesses.titleLoading")}
      </h1>
      <p>{t("mayor.accesses.intro")}</p>
      <form class="toolbar" onSubmit={apply} noValidate>
        <Field id="accesses-camera" label={t("mayor.accesses.camera")} error={errors.field("camera_id")}>
          <select id="accesses-camera" value={draft.camera} {...describedBy("accesses-camera", errors.field("camera_id"))}
                  onChange={(event) => setDraft({ ...draft, camera: (event.currentTarget as HTMLSelectElement).value })}>
            <option value="">{t("mayor.accesses.allCameras")}</option>
            {cameras?.cameras.map((camera) => <option key={camera.camera_id} value={camera.camera_id}>{camera.name}</option>)}
          </select>
        </Field>
        <Field id="accesses-since" label={t("mayor.accesses.since")} error={errors.field("since")}>
          <input id="accesses-since" type="date" value={draft.since} {...describedBy("accesses-since", errors.field("since"))}
                 onInput={(event) => setDraft({ ...draft, since: (event.currentTarget as HTMLInputElement).value })} />
        </Field>
        <Field id="accesses-until" label={t("mayor.accesses.until")} error={errors.field("until")}>
          <input id="accesses-until" type="date" value={draft.until} {...describedBy("accesses-until", errors.field("until"))}
                 onInput={(event) => setDraft({ ...draft, until: (event.currentTarget as HTMLInputElement).value })} />
        </Field>
        <button type="submit">{t("mayor.accesses.apply")}</button>
      </form>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {loaded && accesses.length === 0 ? <p>{t("mayor.accesses.none")}</p> : null}
      {accesses.length > 0 ? (
        <table class="data" id="mayor-accesses">
          <thead>
            <tr>
              <th scope="col">{t("mayor.accesses.when")}</th>
              <th scope="col">{t("mayor.accesses.who")}</th>
              <th scope="col">{t("mayor.accesses.role")}</th>
              <th scope="col">{t("mayor.accesses.camera")}</th>
              <th scope="col">{t("mayor.accesses.what")}</th>
              <th scope="col">{t("mayor.accesses.range")}</th>
              <th scope="col">{t("mayor.accesses.motive")}</th>
            </tr>
          </thead>
          <tbody>
            {accesses.map((access) => (
              <tr key={access.id}>
                <td>{formatDateTime(access.occurred_at)}</td>
                <td>{access.actor_name ?? t("mayor.accesses.unknownPerson")}</td>
                <td>{tDynamic("role", access.actor_role)}</td>
                <td>{access.camera_name ?? t("mayor.accesses.removedCamera")}</td>
                <td>{tDynamic("mayor.action", access.action)}</td>
                <td>{range(access)}</td>
                <td>{access.motive}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {cursor ? (
        <button type="button" class="secondary" onClick={() => void load(cursor).catch(errors.capture)}>
          {t("mayor.accesses.more")}
        </button>
      ) : null}
    </section>
  );
}
