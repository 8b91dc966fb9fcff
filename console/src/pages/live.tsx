// The live wall: one tile per camera on its sub stream (a motive first, journaled with each ticket), a full view on
// the main stream; a stopped camera shows as such within seconds and comes back by itself.
import { useEffect, useState } from "preact/hooks";
import { describedBy, Field } from "../components/field";
import { useFormErrors } from "../components/use-problem";
import { t } from "../i18n/fr";
import { hashParameter } from "../router";
import { type CameraRef, flatten, loadWall } from "../video/cameras";
import { LiveTile } from "../video/live-tile";

const MAX_TILES = 9;

export function LivePage() {
  const [cameras, setCameras] = useState<CameraRef[]>([]);
  const [insee, setInsee] = useState("");
  const [motive, setMotive] = useState("");
  const [opened, setOpened] = useState<string | null>(null);
  const [full, setFull] = useState<CameraRef | null>(null);
  const errors = useFormErrors(["motive"]);
  const [motiveError, setMotiveError] = useState<string | undefined>(undefined);
  const only = hashParameter("camera");

  useEffect(() => {
    void loadWall().then((wall) => setCameras(flatten(wall))).catch(errors.capture);
  }, []);

  const communes = [...new Map(cameras.map((ref) => [ref.insee, ref.commune])).entries()];
  const shown = cameras.filter((ref) => (only ? ref.camera.camera_id === only : !insee || ref.insee === insee))
    .slice(0, MAX_TILES);

  function open(event: Event): void {
    event.preventDefault();
    setMotiveError(motive.trim().length < 3 ? t("media.motiveRequired") : undefined);
    if (motive.trim().length >= 3) setOpened(motive.trim());
  }

  return (
    <section aria-labelledby="live-title">
      <h1 id="live-title">{t("live.title")}</h1>
      <form class="toolbar" onSubmit={open}>
        <Field id="live-commune" label={t("live.commune")}>
          <select id="live-commune" value={insee} onChange={(e) => setInsee((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">{t("cameras.all")}</option>
            {communes.map(([code, name]) => <option key={code} value={code}>{name}</option>)}
          </select>
        </Field>
        <Field id="live-motive" label={t("live.motive")} error={motiveError ?? errors.form}>
          <input id="live-motive" name="motive" value={motive} required minLength={3}
                 onInput={(e) => setMotive((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("live-motive", motiveError ?? errors.form)} />
        </Field>
        {opened ? (
          <button type="button" class="secondary" onClick={() => { setOpened(null); setFull(null); }}>
            {t("live.close")}
          </button>
        ) : <button type="submit">{t("live.open")}</button>}
      </form>
      <p>{t("live.count", { n: shown.length })}</p>
      {opened && full ? (
        <section class="live-full" aria-label={t("live.fullView", { name: full.camera.name })}>
          <LiveTile cameraId={full.camera.camera_id} name={full.camera.name} stream="main" motive={opened} />
          <button type="button" onClick={() => setFull(null)}>{t("live.closeFull")}</button>
        </section>
      ) : null}
      {opened && !full ? (
        <div class="live-wall">
          {shown.map((ref) => (
            <LiveTile key={ref.camera.camera_id} cameraId={ref.camera.camera_id} name={ref.camera.name} stream="sub"
                      motive={opened} onFullView={() => setFull(ref)} />
          ))}
        </div>
      ) : null}
    </section>
  );
}
