// Sites and cameras: every camera in scope with its site, codec (H.265 flagged), credentials (write-only) and
// authorisation warnings (60/30/7 days ahead); add, edit, move between the tenant's sites, test the connection
// (one live frame through the gateway), and the camera's prefectoral authorisations.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import { loadWall } from "../../video/cameras";
import { Authorisations } from "./authorisations";
import {
  type AuthorisationExpiry, type Camera, formatDate, isDepartmentAdmin, loadCameras, loadSites, type Site,
  type WallCamera,
} from "./data";
import { FrameProbe } from "./frame-probe";
import "./admin.css";

const STATUSES = ["provisioning", "online", "offline", "disabled"] as const;
type Status = (typeof STATUSES)[number];
const CAMERA_FIELDS = ["site_id", "name", "main_stream_url", "sub_stream_url", "credentials", "status",
                       "live_transcode"] as const;

export function CamerasAdminPage() {
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [sites, setSites] = useState<Site[]>([]);
  const [wall, setWall] = useState<Map<string, WallCamera>>(new Map());
  const [expiring, setExpiring] = useState<AuthorisationExpiry[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const errors = useFormErrors([]);

  const reload = async (): Promise<void> => {
    try {
      const [cameraList, siteList, wallData, expiries] = await Promise.all([
        loadCameras(), loadSites(), loadWall(),
        api.GET("/authorisations/expiring", { params: { query: { within_days: 60 } } }).then(unwrap),
      ]);
      setCameras(cameraList);
      setSites(siteList);
      setWall(new Map(wallData.communes.flatMap((c) => c.sites.flatMap((s) => s.cameras))
        .map((camera) => [camera.camera_id, camera])));
      setExpiring(expiries);
    } catch (error) {
      errors.capture(error);
    }
  };
  useEffect(() => void reload(), []);

  const siteName = new Map(sites.map((site) => [site.id, site.name]));
  const camera = cameras.find((candidate) => candidate.id === selected) ?? null;
  const warnings = [...expiring].sort((a, b) => (a.days_left ?? -1) - (b.days_left ?? -1));
  return (
    <section aria-labelledby="cameras-admin-title">
      <h1 id="cameras-admin-title">{t("admin.cameras.title")}</h1>
      <p>{t("admin.cameras.intro")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <section aria-labelledby="expiring-title" class="expiring">
        <h2 id="expiring-title">{t("admin.cameras.expiring")}</h2>
        {warnings.length === 0 ? <p>{t("admin.cameras.expiringNone")}</p> : (
          <ul id="expiring-list">
            {warnings.map((row) => (
              <li key={row.camera_id} data-camera-id={row.camera_id} data-warning={row.warning_days ?? "none"}
                  class={`expiry warning-${row.warning_days ?? "none"}`}>
                {row.state === "unauthorised"
                  ? t("admin.cameras.unauthorised", { name: row.camera_name })
                  : t("admin.cameras.expiresIn", { name: row.camera_name, order: row.prefectoral_order_number ?? "",
                                                   date: formatDate(row.authorised_until ?? ""),
                                                   days: row.days_left ?? 0, warning: row.warning_days ?? 0 })}
              </li>
            ))}
          </ul>
        )}
      </section>
      <div class="actions">
        <button type="button" onClick={() => { setAdding(true); setSelected(null); setNotice(null); }}>
          {t("admin.cameras.add")}
        </button>
        {notice ? <span role="status">{notice}</span> : null}
      </div>
      {adding ? (
        <CameraForm sites={sites} onDone={(saved) => {
          setAdding(false);
          if (saved) {
            setNotice(t("admin.cameras.created", { name: saved.name }));
            setSelected(saved.id);
            void reload();
          }
        }} />
      ) : null}
      <h2 id="camera-list-title">{t("admin.cameras.list")}</h2>
      <table class="data" id="cameras-table" aria-labelledby="camera-list-title">
        <thead>
          <tr>
            <th scope="col">{t("admin.cameras.name")}</th>
            <th scope="col">{t("admin.cameras.site")}</th>
            <th scope="col">{t("admin.cameras.status")}</th>
            <th scope="col">{t("admin.cameras.codec")}</th>
            <th scope="col">{t("admin.cameras.hasCredentials")}</th>
            <th scope="col">{t("admin.cameras.warning")}</th>
            <th scope="col">{t("admin.cameras.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {cameras.map((row) => {
            const health = wall.get(row.id);
            const expiry = expiring.find((candidate) => candidate.camera_id === row.id);
            return (
              <tr key={row.id} data-camera-id={row.id} aria-current={row.id === selected ? "true" : undefined}>
                <th scope="row">{row.name}</th>
                <td>{siteName.get(row.site_id) ?? row.site_id}</td>
                <td>{tDynamic("admin.cameraStatus", row.status)}</td>
                <td><Codec camera={row} health={health} /></td>
                <td>{row.has_credentials ? t("admin.yes") : t("admin.no")}</td>
                <td>{expiry ? <span class={`badge warning-${expiry.warning_days ?? "none"}`}>
                  {expiry.state === "unauthorised" ? t("admin.authz.none")
                    : t("admin.cameras.expiryBadge", { order: expiry.prefectoral_order_number ?? "",
                                                       date: formatDate(expiry.authorised_until ?? ""),
                                                       days: expiry.days_left ?? 0, warning: expiry.warning_days ?? 0 })}
                </span> : t("admin.none")}</td>
                <td>
                  <button type="button" class="secondary" aria-label={t("admin.cameras.editTitle", { name: row.name })}
                          onClick={() => { setSelected(row.id); setAdding(false); setNotice(null); }}>
                    {t("admin.edit")}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {camera ? (
        <div class="camera-detail">
          <CameraForm key={camera.id} camera={camera} health={wall.get(camera.id)}
                      sites={sites.filter((site) => site.tenant_id === camera.tenant_id)}
                      onDone={(saved) => {
                        if (saved) setCameras((list) => list.map((row) => (row.id === saved.id ? saved : row)));
                      }} />
          <Authorisations cameraId={camera.id} onChange={() => void reload()} />
        </div>
      ) : null}
    </section>
  );
}

export function Codec(props: { camera: Camera; health: WallCamera | undefined }) {
  const codec = props.health?.codec;
  if (!codec) return <span>{t("admin.cameras.codecUnknown")}</span>;
  if (codec !== "hevc") return <span>{codec.toUpperCase()}</span>;
  return (
    <span class={props.camera.live_transcode ? "badge" : "badge warning-7"} data-h265="true">
      {props.camera.live_transcode ? t("admin.cameras.h265Transcoded") : t("admin.cameras.h265")}
    </span>
  );
}

function CameraForm(props: { camera?: Camera; health?: WallCamera | undefined; sites: Site[];
                             onDone: (saved: Camera | null) => void }) {
  const existing = props.camera;
  const [siteId, setSiteId] = useState(existing?.site_id ?? props.sites[0]?.id ?? "");
  const [name, setName] = useState(existing?.name ?? "");
  const [mainUrl, setMainUrl] = useState(existing?.main_stream_url ?? "");
  const [subUrl, setSubUrl] = useState(existing?.sub_stream_url ?? "");
  // Write-only: never filled from the camera (the API does not return them), sent only when both are typed.
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  // The health-driven states (unauthorised, degraded…) show as they are; an administrator sets only STATUSES.
  const [status, setStatus] = useState<string>(existing?.status ?? "provisioning");
  const [transcode, setTranscode] = useState(existing?.live_transcode ?? false);
  const [saved, setSaved] = useState(false);
  const [hasCredentials, setHasCredentials] = useState(existing?.has_credentials ?? false);
  const [probing, setProbing] = useState(0);
  const errors = useFormErrors(CAMERA_FIELDS);
  const prefix = existing ? "edit" : "new";

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    setSaved(false);
    const credentials = username || password ? { credentials: { username, password } } : {};
    try {
      let result: Camera;
      if (existing) {
        result = unwrap(await api.PATCH("/cameras/{camera_id}", {
          params: { path: { camera_id: existing.id } },
          body: {
            ...(siteId !== existing.site_id ? { site_id: siteId } : {}),
            name, main_stream_url: mainUrl, sub_stream_url: subUrl || null,
            ...(status !== existing.status ? { status: status as Status } : {}),
            ...(transcode !== existing.live_transcode ? { live_transcode: transcode } : {}),
            ...credentials,
          },
        }));
      } else {
        result = unwrap(await api.POST("/cameras", {
          body: { site_id: siteId, name, main_stream_url: mainUrl, ...(subUrl ? { sub_stream_url: subUrl } : {}),
                  ...credentials },
        }));
      }
      errors.clear();
      setUsername("");
      setPassword("");
      setHasCredentials(result.has_credentials);
      setSaved(true);
      props.onDone(result);
    } catch (error) {
      errors.capture(error);
    }
  }

  const credentialsError = errors.field("credentials");
  const titleId = `${prefix}-camera-title`;
  return (
    <form class="inline-form" aria-labelledby={titleId} onSubmit={(e) => void submit(e)} noValidate autoComplete="off">
      <h2 id={titleId}>{existing ? t("admin.cameras.editTitle", { name: existing.name }) : t("admin.cameras.addTitle")}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <Field id={`${prefix}-site`} label={existing ? t("admin.cameras.move") : t("admin.cameras.site")}
             error={errors.field("site_id")}>
        <select id={`${prefix}-site`} value={siteId} {...describedBy(`${prefix}-site`, errors.field("site_id"))}
                onChange={(e) => setSiteId((e.currentTarget as HTMLSelectElement).value)}>
          {props.sites.map((site) => <option key={site.id} value={site.id}>{site.name} ({site.insee_code})</option>)}
        </select>
      </Field>
      <Field id={`${prefix}-name`} label={t("admin.cameras.name")} error={errors.field("name")}>
        <input id={`${prefix}-name`} value={name} {...describedBy(`${prefix}-name`, errors.field("name"))}
               onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
      </Field>
      <Field id={`${prefix}-main`} label={t("admin.cameras.mainUrl")} error={errors.field("main_stream_url")}>
        <input id={`${prefix}-main`} value={mainUrl} {...describedBy(`${prefix}-main`, errors.field("main_stream_url"))}
               onInput={(e) => setMainUrl((e.currentTarget as HTMLInputElement).value)} />
      </Field>
      <Field id={`${prefix}-sub`} label={t("admin.cameras.subUrl")} error={errors.field("sub_stream_url")}>
        <input id={`${prefix}-sub`} value={subUrl} {...describedBy(`${prefix}-sub`, errors.field("sub_stream_url"))}
               onInput={(e) => setSubUrl((e.currentTarget as HTMLInputElement).value)} />
      </Field>
      <fieldset aria-describedby={`${prefix}-credentials-help`}>
        <legend>{hasCredentials ? t("admin.cameras.hasCredentials") : t("admin.cameras.noCredentials")}</legend>
        <p id={`${prefix}-credentials-help`} class="help">{t("admin.cameras.credentialsHelp")}</p>
        <div class="toolbar">
          <Field id={`${prefix}-username`} label={t("admin.cameras.username")} error={credentialsError}>
            <input id={`${prefix}-username`} value={username} autoComplete="off"
                   {...describedBy(`${prefix}-username`, credentialsError)}
                   onInput={(e) => setUsername((e.currentTarget as HTMLInputElement).value)} />
          </Field>
          <Field id={`${prefix}-password`} label={t("admin.cameras.password")}>
            <input id={`${prefix}-password`} type="password" value={password} autoComplete="new-password"
                   onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)} />
          </Field>
        </div>
      </fieldset>
      {existing ? (
        <>
          <Field id="edit-status" label={t("admin.cameras.status")} error={errors.field("status")}>
            <select id="edit-status" value={status} {...describedBy("edit-status", errors.field("status"))}
                    onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
              {(STATUSES as readonly string[]).includes(existing.status) ? null : (
                <option value={existing.status} disabled>{tDynamic("admin.cameraStatus", existing.status)}</option>
              )}
              {STATUSES.map((value) => <option key={value} value={value}>{tDynamic("admin.cameraStatus", value)}</option>)}
            </select>
          </Field>
          <p>{t("admin.cameras.codec")} : <Codec camera={existing} health={props.health} /></p>
          <div class="check">
            <input id="edit-transcode" type="checkbox" checked={transcode}
                   onChange={(e) => setTranscode((e.currentTarget as HTMLInputElement).checked)} />
            <label for="edit-transcode">{t("admin.cameras.transcode")}</label>
          </div>
        </>
      ) : null}
      <div class="actions">
        <button type="submit">{t("admin.save")}</button>
        {existing ? null : <button type="button" class="secondary" onClick={() => props.onDone(null)}>{t("admin.cancel")}</button>}
        {existing && isDepartmentAdmin() ? (
          <button type="button" class="secondary" onClick={() => setProbing((n) => n + 1)}>{t("admin.cameras.test")}</button>
        ) : null}
        {saved ? <span role="status">{t("admin.saved")}</span> : null}
      </div>
      {existing && probing > 0 ? <FrameProbe key={probing} cameraId={existing.id} name={existing.name} /> : null}
    </form>
  );
}
