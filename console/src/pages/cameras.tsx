// The camera wall: every camera in scope by commune and site with its condition and last frame time, refreshed
// every few seconds; filters by commune, tenant and condition; links to the live view and to playback.
import { useEffect, useState } from "preact/hooks";
import { currentSession } from "../auth/session";
import { Field } from "../components/field";
import { useFormErrors } from "../components/use-problem";
import { formatDateTime } from "../format";
import { t, tDynamic } from "../i18n/fr";
import { type CameraCondition, type CameraWall, flatten, loadWall } from "../video/cameras";
import { watchesImages } from "./roles";

const REFRESH_MS = 5000;
const CONDITIONS: CameraCondition[] = ["offline", "tamper", "recording_gaps", "online", "disabled", "unknown"];

export function CamerasPage() {
  const [wall, setWall] = useState<CameraWall | null>(null);
  const [everything, setEverything] = useState<CameraWall | null>(null);
  const [insee, setInsee] = useState("");
  const [tenant, setTenant] = useState("");
  const [condition, setCondition] = useState("");
  const errors = useFormErrors([]);
  // A mayor or an auditor sees the cameras' condition, not their images: no link to pages they are refused.
  const watcher = watchesImages(currentSession()?.role);

  useEffect(() => {
    let active = true;
    const refresh = async (): Promise<void> => {
      try {
        const filtered = await loadWall({
          ...(insee ? { insee_code: insee } : {}), ...(tenant ? { tenant_id: tenant } : {}),
          ...(condition ? { condition: [condition as CameraCondition] } : {}),
        });
        if (active) setWall(filtered);
        if (active && !everything) setEverything(await loadWall());
        errors.clear();
      } catch (error) {
        if (active) errors.capture(error);
      }
    };
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => {
      active = false;
      clearInterval(timer);
    };
  }, [insee, tenant, condition]);

  const all = everything ? flatten(everything) : [];
  const communes = [...new Map(all.map((ref) => [ref.insee, ref.commune])).entries()];
  const tenants = [...new Map(all.map((ref) => [ref.camera.tenant_id, ref.camera.tenant_name])).entries()];
  const counts = wall?.counts ?? {};
  return (
    <section aria-labelledby="cameras-title">
      <h1 id="cameras-title">{t("cameras.title")}</h1>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="toolbar">
        <Field id="wall-commune" label={t("cameras.commune")}>
          <select id="wall-commune" value={insee} onChange={(e) => setInsee((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">{t("cameras.all")}</option>
            {communes.map(([code, name]) => <option key={code} value={code}>{name}</option>)}
          </select>
        </Field>
        <Field id="wall-tenant" label={t("cameras.tenant")}>
          <select id="wall-tenant" value={tenant} onChange={(e) => setTenant((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">{t("cameras.all")}</option>
            {tenants.map(([id, name]) => <option key={id} value={id}>{name}</option>)}
          </select>
        </Field>
        <Field id="wall-condition" label={t("cameras.condition")}>
          <select id="wall-condition" value={condition}
                  onChange={(e) => setCondition((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">{t("cameras.all")}</option>
            {CONDITIONS.map((c) => <option key={c} value={c}>{tDynamic("condition", c)}</option>)}
          </select>
        </Field>
      </div>
      <p aria-live="polite">{t("cameras.counts", { online: counts["online"] ?? 0, offline: counts["offline"] ?? 0,
                                                   gaps: counts["recording_gaps"] ?? 0, tamper: counts["tamper"] ?? 0 })}</p>
      {wall && wall.communes.length === 0 ? <p>{t("cameras.empty")}</p> : null}
      {wall?.communes.map((commune) => (
        <section key={commune.insee_code} class="commune" aria-labelledby={`commune-${commune.insee_code}`}>
          <h2 id={`commune-${commune.insee_code}`}>{commune.name} ({commune.insee_code})</h2>
          {commune.sites.map((site) => (
            <section key={site.site_id} class="site" aria-label={site.name}>
              <h3>{site.name}</h3>
              <ul class="camera-tiles">
                {site.cameras.map((camera) => (
                  <li key={camera.camera_id} class={`camera-tile condition-${camera.condition}`}
                      data-camera-id={camera.camera_id} data-condition={camera.condition}>
                    <strong>{camera.name}</strong>
                    <span class="badge">{tDynamic("condition", camera.condition)}</span>
                    <span>{camera.last_frame_at ? t("cameras.lastFrame", { t: formatDateTime(camera.last_frame_at) })
                                                 : t("cameras.noFrame")}</span>
                    {camera.recent_gaps > 0 ? <span>{t("cameras.gaps", { n: camera.recent_gaps })}</span> : null}
                    {camera.live_needs_transcode && !camera.live_transcode ? <span class="warning">{t("cameras.h265")}</span> : null}
                    {watcher ? (
                      <span class="links">
                        <a href={`#/direct?camera=${camera.camera_id}`}>{t("cameras.watch")}</a>{" "}
                        <a href={`#/relecture?camera=${camera.camera_id}`}>{t("cameras.replay")}</a>
                      </span>
                    ) : null}
                  </li>
                ))}
              </ul>
            </section>
          ))}
        </section>
      ))}
    </section>
  );
}
