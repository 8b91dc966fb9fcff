// The zones and rules editor of a department admin: a camera's zones, lines and privacy masks drawn on its current
// frame (live sub stream), and its analytics, each offered only where the camera's authorisation gives it a legal
// basis today (the others are greyed out with the reason and the text that requires it).
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useStillShown } from "../../components/use-current";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import { hashParameter } from "../../router";
import { CoordinatesList } from "./coordinates";
import { FrameEditor, type SavedShape } from "./frame-editor";
import { minimumPoints, type Point, type Shape, type ShapeKind } from "./geometry";
import { RulesPanel } from "./rules";
import "./zones.css";

// Points as the client decodes them (arrays of numbers; the API stores pairs).
type Camera = Omit<components["schemas"]["Camera"], "privacy_masks"> & { privacy_masks: { points: number[][] }[] };
export type Zone = Omit<components["schemas"]["Zone"], "points"> & { points: number[][] };

interface Draft extends Shape {
  /** The zone's id, or the mask's index, being redrawn; null for a new one. */
  editing: string | number | null;
  name: string;
}

const DEFAULT_MOTIVE = t("zones.defaultMotive");

export function ZonesPage() {
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [cameraId, setCameraId] = useState<string>(hashParameter("camera") ?? "");
  const [zones, setZones] = useState<Zone[]>([]);
  const [motive, setMotive] = useState(DEFAULT_MOTIVE);
  const [liveMotive, setLiveMotive] = useState<string | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [notice, setNotice] = useState("");
  const errors = useFormErrors(["name", "points", "kind", "privacy_masks"]);
  const loading = useFormErrors([]);

  const camera = cameras.find((candidate) => candidate.id === cameraId) ?? null;

  useEffect(() => {
    void api.GET("/cameras", { params: { query: { limit: 200 } } }).then(unwrap).then((page) => {
      setCameras(page.items);
      if (!cameraId && page.items[0]) setCameraId(page.items[0].id);
    }).catch(loading.capture);
  }, []);

  const stillShown = useStillShown(cameraId);
  async function reloadZones(id: string): Promise<void> {
    const found = unwrap(await api.GET("/cameras/{camera_id}/zones", { params: { path: { camera_id: id } } }));
    // Another camera chosen meanwhile: its zones must not be drawn over this one's picture.
    if (stillShown(id)) setZones(found);
  }

  useEffect(() => {
    setDraft(null);
    setLiveMotive(null);
    errors.clear();
    if (cameraId) void reloadZones(cameraId).catch(loading.capture);
  }, [cameraId]);

  const masks: Point[][] = (camera?.privacy_masks ?? []).map((mask) => mask.points.map(([x, y]) => [x ?? 0, y ?? 0]));
  const saved: SavedShape[] = [
    ...zones.filter((zone) => zone.id !== draft?.editing).map((zone): SavedShape => ({
      id: zone.id, label: zone.name, kind: zone.kind, points: zone.points.map(([x, y]): Point => [x ?? 0, y ?? 0]),
    })),
    ...masks.map((points, index): SavedShape => ({ id: `mask-${index}`, label: t("zones.maskName", { n: index + 1 }),
                                                   kind: "mask", points }))
      .filter((_, index) => !(draft?.kind === "mask" && draft.editing === index)),
  ];

  function start(kind: ShapeKind): void {
    errors.clear();
    setNotice("");
    setDraft({ kind, points: [], editing: null, name: "" });
  }

  async function saveMasks(next: Point[][]): Promise<void> {
    if (!camera) return;
    const updated = unwrap(await api.PATCH("/cameras/{camera_id}", {
      params: { path: { camera_id: camera.id } }, body: { privacy_masks: next.map((points) => ({ points })) },
    }));
    setCameras(cameras.map((candidate) => (candidate.id === updated.id ? updated : candidate)));
  }

  async function save(event: Event): Promise<void> {
    event.preventDefault();
    if (!draft || !camera) return;
    errors.clear();
    try {
      if (draft.kind === "mask") {
        const next = typeof draft.editing === "number"
          ? masks.map((points, index) => (index === draft.editing ? draft.points : points))
          : [...masks, draft.points];
        await saveMasks(next);
        setNotice(t("zones.maskSaved"));
      } else {
        const body = { name: draft.name, kind: draft.kind, points: draft.points };
        if (typeof draft.editing === "string") {
          unwrap(await api.PUT("/zones/{zone_id}", { params: { path: { zone_id: draft.editing } }, body }));
        } else {
          unwrap(await api.POST("/cameras/{camera_id}/zones", { params: { path: { camera_id: camera.id } }, body }));
        }
        await reloadZones(camera.id);
        setNotice(t("zones.saved", { name: draft.name }));
      }
      setDraft(null);
    } catch (error) {
      errors.capture(error);
    }
  }

  async function removeZone(zone: Zone): Promise<void> {
    if (!globalThis.confirm(t("zones.confirmDelete", { name: zone.name }))) return;
    try {
      unwrap(await api.DELETE("/zones/{zone_id}", { params: { path: { zone_id: zone.id } } }));
      await reloadZones(zone.camera_id);
      setNotice(t("zones.deleted", { name: zone.name }));
    } catch (error) {
      loading.capture(error);
    }
  }

  async function removeMask(index: number): Promise<void> {
    try {
      await saveMasks(masks.filter((_, i) => i !== index));
      setNotice(t("zones.maskDeleted", { n: index + 1 }));
    } catch (error) {
      loading.capture(error);
    }
  }

  const pointsError = errors.field("points") ?? errors.field("privacy_masks") ?? errors.field("kind");
  const tooFew = draft ? draft.points.length < minimumPoints(draft.kind) : true;

  return (
    <section aria-labelledby="zones-title">
      <h1 id="zones-title">{t("zones.title")}</h1>
      <p class="hint">{t("zones.intro")}</p>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <form class="toolbar" onSubmit={(e) => { e.preventDefault(); setLiveMotive(motive.trim() || null); }}>
        <Field id="zones-camera" label={t("zones.camera")}>
          <select id="zones-camera" value={cameraId}
                  onChange={(e) => setCameraId((e.currentTarget as HTMLSelectElement).value)}>
            {cameras.map((c) => <option key={c.id} value={c.id}>{c.name} ({c.insee_code})</option>)}
          </select>
        </Field>
        <Field id="zones-motive" label={t("zones.motive")}>
          <input id="zones-motive" value={motive} required minLength={3} maxLength={500}
                 onInput={(e) => setMotive((e.currentTarget as HTMLInputElement).value)} />
        </Field>
        <button type="submit">{t("zones.showFrame")}</button>
      </form>
      <p aria-live="polite" class="notice">{notice}</p>
      {camera ? (
        <div class="zones-layout">
          <FrameEditor cameraId={camera.id} cameraName={camera.name} motive={liveMotive} saved={saved}
                       draft={draft} onDraft={(shape) => draft && setDraft({ ...draft, ...shape })} />
          <div class="zones-side">
            {draft ? (
              <form noValidate class="inline-form" aria-labelledby="draft-title" onSubmit={(e) => void save(e)}>
                <h2 id="draft-title">{t(`zones.draft.${draft.kind}`)}</h2>
                <p class="hint">{t(draft.kind === "line" ? "zones.drawLineHint" : "zones.drawHint")}</p>
                {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
                {draft.kind !== "mask" ? (
                  <Field id="shape-name" label={t("zones.name")} error={errors.field("name")}>
                    <input id="shape-name" value={draft.name} maxLength={100}
                           onInput={(e) => setDraft({ ...draft, name: (e.currentTarget as HTMLInputElement).value })}
                           {...describedBy("shape-name", errors.field("name"))} />
                  </Field>
                ) : null}
                <CoordinatesList shape={draft} error={pointsError}
                                 onChange={(shape) => setDraft({ ...draft, ...shape })} />
                <div class="actions">
                  <button type="submit" disabled={tooFew}>{t("zones.save")}</button>
                  <button type="button" class="secondary" onClick={() => { setDraft(null); errors.clear(); }}>
                    {t("zones.cancel")}
                  </button>
                </div>
              </form>
            ) : (
              <div class="actions">
                <button type="button" onClick={() => start("zone")}>{t("zones.newZone")}</button>
                <button type="button" onClick={() => start("line")}>{t("zones.newLine")}</button>
                <button type="button" class="secondary" onClick={() => start("mask")}>{t("zones.newMask")}</button>
              </div>
            )}
            <h2 id="zones-list-title">{t("zones.listTitle")}</h2>
            {zones.length === 0 ? <p>{t("zones.none")}</p> : null}
            <ul class="shape-list" aria-labelledby="zones-list-title">
              {zones.map((zone) => (
                <li key={zone.id} data-zone-id={zone.id}>
                  <strong>{zone.name}</strong> <span class="badge">{tDynamic("zones.kind", zone.kind)}</span>{" "}
                  <span class="hint">{t("zones.pointCount", { n: zone.points.length })}</span>
                  <span class="actions">
                    <button type="button" class="secondary" onClick={() => setDraft({
                      kind: zone.kind, editing: zone.id, name: zone.name,
                      points: zone.points.map(([x, y]): Point => [x ?? 0, y ?? 0]) })}>
                      {t("zones.edit", { name: zone.name })}
                    </button>
                    <button type="button" class="danger" onClick={() => void removeZone(zone)}>
                      {t("zones.delete", { name: zone.name })}
                    </button>
                  </span>
                </li>
              ))}
            </ul>
            <h2 id="masks-title">{t("zones.masksTitle")}</h2>
            <p class="hint">{t("zones.masksHint")}</p>
            {masks.length === 0 ? <p>{t("zones.noMasks")}</p> : null}
            <ul class="shape-list" aria-labelledby="masks-title">
              {masks.map((points, index) => (
                <li key={index}>
                  <strong>{t("zones.maskName", { n: index + 1 })}</strong>{" "}
                  <span class="hint">{t("zones.pointCount", { n: points.length })}</span>
                  <span class="actions">
                    <button type="button" class="secondary"
                            onClick={() => setDraft({ kind: "mask", editing: index, name: "", points })}>
                      {t("zones.editMask", { n: index + 1 })}
                    </button>
                    <button type="button" class="danger" onClick={() => void removeMask(index)}>
                      {t("zones.deleteMask", { n: index + 1 })}
                    </button>
                  </span>
                </li>
              ))}
            </ul>
          </div>
        </div>
      ) : null}
      {camera ? <RulesPanel cameraId={camera.id} zones={zones} /> : null}
    </section>
  );
}
