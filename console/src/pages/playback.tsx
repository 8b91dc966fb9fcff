// Playback: a camera's timeline over an interval (gaps shown), its recordings played by hls.js from the API's HLS
// playlist (journaled with the motive), seek and speed; the interval can become a requisition with its export.
import type Hls from "hls.js";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { currentSession } from "../auth/session";
import { describedBy, Field } from "../components/field";
import { useFormErrors } from "../components/use-problem";
import { t, tDynamic } from "../i18n/fr";
import { hashParameter } from "../router";
import { type CameraRef, flatten, loadWall } from "../video/cameras";
import { type Timeline, TimelineBar } from "../video/timeline";

type HlsPlayback = components["schemas"]["HlsPlayback"];
type LegalFrame = components["schemas"]["RequisitionRequest"]["legal_frame"];

const SPEEDS = [0.5, 1, 2, 4, 8];
const LEGAL_FRAMES: LegalFrame[] = ["flagrance", "enquete_preliminaire", "information_judiciaire"];
const EXPORT_ROLES = ["supervisor", "department_admin"];

/** A datetime-local value (the centre's local time) for an instant, and back. */
export function toLocalInput(date: Date): string {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function fromLocalInput(value: string): string {
  return new Date(value).toISOString();
}

/** The player's position for a wall-clock instant: the playlist keeps wall-clock time from its first segment. */
export function positionOf(at: Date, playback: HlsPlayback): number {
  return Math.max(0, (at.getTime() - Date.parse(playback.start_at)) / 1000);
}

export function PlaybackPage() {
  const [cameras, setCameras] = useState<CameraRef[]>([]);
  const [cameraId, setCameraId] = useState(hashParameter("camera") ?? "");
  const [start, setStart] = useState(toLocalInput(new Date(Date.now() - 15 * 60_000)));
  const [end, setEnd] = useState(toLocalInput(new Date()));
  const [motive, setMotive] = useState("");
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [playback, setPlayback] = useState<HlsPlayback | null>(null);
  const [playing, setPlaying] = useState<Date | null>(null);
  const [speed, setSpeed] = useState(1);
  const [exported, setExported] = useState<string | null>(null);
  const [playerError, setPlayerError] = useState<string | null>(null);
  const video = useRef<HTMLVideoElement>(null);
  const hls = useRef<Hls | null>(null);
  const errors = useFormErrors(["motive", "start", "end"]);
  const exportErrors = useFormErrors(["procedure_number", "legal_frame", "opj_name", "opj_service", "motive"]);
  const canExport = EXPORT_ROLES.includes(currentSession()?.role ?? "");

  useEffect(() => {
    void loadWall().then((wall) => {
      const found = flatten(wall);
      setCameras(found);
      if (!cameraId && found[0]) setCameraId(found[0].camera.camera_id);
    }).catch(errors.capture);
    return () => hls.current?.destroy();
  }, []);

  /** Sets the speed on the element at once; the default rate too, since reloading the media (hls.js recovering
   * from an error, a new interval) resets the rate to it. */
  function changeSpeed(value: number): void {
    setSpeed(value);
    const element = video.current;
    if (element) element.defaultPlaybackRate = element.playbackRate = value;
  }

  async function load(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    hls.current?.destroy();
    hls.current = null;
    setPlayback(null);
    setPlayerError(null);
    try {
      const interval = { start: fromLocalInput(start), end: fromLocalInput(end) };
      setTimeline(unwrap(await api.GET("/cameras/{camera_id}/timeline", {
        params: { path: { camera_id: cameraId }, query: interval },
      })));
      const answer = unwrap(await api.POST("/cameras/{camera_id}/playback/hls", {
        params: { path: { camera_id: cameraId } }, body: { ...interval, motive },
      }));
      setPlayback(answer);
      await play(answer);
    } catch (error) {
      errors.capture(error);
    }
  }

  async function play(answer: HlsPlayback): Promise<void> {
    const element = video.current;
    if (!element) return;
    // Loaded with the page that plays: the other pages do without the player's 600 kB.
    const { default: Player } = await import("hls.js");
    const player = new Player({ enableWorker: false });
    hls.current = player;
    player.loadSource(URL.createObjectURL(new Blob([answer.playlist], { type: "application/vnd.apple.mpegurl" })));
    player.attachMedia(element);
    player.on(Player.Events.ERROR, (_event, data) => {
      if (data.fatal) setPlayerError(t("playback.playerError", { details: data.details }));
    });
    player.on(Player.Events.MANIFEST_PARSED, () => {
      element.playbackRate = element.defaultPlaybackRate;
      void element.play().catch(() => undefined);
    });
    element.ontimeupdate = () => setPlaying(player.playingDate ?? null);
  }

  function seek(at: Date): void {
    if (video.current && playback) video.current.currentTime = positionOf(at, playback);
  }

  async function requestExport(event: Event): Promise<void> {
    event.preventDefault();
    exportErrors.clear();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? "");
    try {
      const requisition = unwrap(await api.POST("/requisitions", { body: {
        procedure_number: text("procedure_number"), legal_frame: text("legal_frame") as LegalFrame,
        opj_name: text("opj_name"), opj_service: text("opj_service"), camera_ids: [cameraId],
        start: fromLocalInput(start), end: fromLocalInput(end), received_at: new Date().toISOString(),
      } }));
      const job = unwrap(await api.POST("/requisitions/{requisition_id}/exports", {
        params: { path: { requisition_id: requisition.id } }, body: { motive: text("export_motive") },
      }));
      setExported(t("playback.exportQueued", { id: job.id, status: job.status }));
    } catch (error) {
      exportErrors.capture(error);
    }
  }

  const motiveError = errors.field("motive");
  return (
    <section aria-labelledby="playback-title">
      <h1 id="playback-title">{t("playback.title")}</h1>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <form class="toolbar" onSubmit={(e) => void load(e)}>
        <Field id="playback-camera" label={t("playback.camera")}>
          <select id="playback-camera" value={cameraId}
                  onChange={(e) => setCameraId((e.currentTarget as HTMLSelectElement).value)}>
            {cameras.map((ref) => (
              <option key={ref.camera.camera_id} value={ref.camera.camera_id}>
                {ref.commune} — {ref.site} — {ref.camera.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="playback-start" label={t("playback.start")} error={errors.field("start")}>
          <input id="playback-start" type="datetime-local" value={start}
                 onInput={(e) => setStart((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("playback-start", errors.field("start"))} />
        </Field>
        <Field id="playback-end" label={t("playback.end")} error={errors.field("end")}>
          <input id="playback-end" type="datetime-local" value={end}
                 onInput={(e) => setEnd((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("playback-end", errors.field("end"))} />
        </Field>
        <Field id="playback-motive" label={t("playback.motive")} error={motiveError}>
          <input id="playback-motive" name="motive" value={motive}
                 onInput={(e) => setMotive((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("playback-motive", motiveError)} />
        </Field>
        <button type="submit">{t("playback.load")}</button>
      </form>
      {timeline ? <TimelineBar timeline={timeline} playing={playing} onSeek={seek} /> : null}
      {playerError ? <p class="form-error" role="alert" data-testid="playback-error">{playerError}</p> : null}
      <div class="player" hidden={!playback}>
        <video ref={video} controls muted playsInline aria-label={t("playback.video")} data-testid="playback-video" />
        <Field id="playback-speed" label={t("playback.speed")}>
          <select id="playback-speed" value={String(speed)}
                  onChange={(e) => changeSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
            {SPEEDS.map((value) => <option key={value} value={String(value)}>×{value}</option>)}
          </select>
        </Field>
      </div>
      {canExport && playback ? (
        <form class="export" onSubmit={(e) => void requestExport(e)} aria-labelledby="export-title">
          <h2 id="export-title">{t("playback.export")}</h2>
          {exportErrors.form ? <p class="form-error" role="alert">{exportErrors.form}</p> : null}
          {([["procedure_number", "playback.procedure"], ["opj_name", "playback.opjName"],
             ["opj_service", "playback.opjService"], ["export_motive", "playback.exportMotive"]] as const).map(
            ([name, label]) => {
              const error = exportErrors.field(name === "export_motive" ? "motive" : name);
              return (
                <Field key={name} id={`export-${name}`} label={t(label)} error={error}>
                  <input id={`export-${name}`} name={name} {...describedBy(`export-${name}`, error)} />
                </Field>
              );
            })}
          <Field id="export-legal_frame" label={t("playback.legalFrame")} error={exportErrors.field("legal_frame")}>
            <select id="export-legal_frame" name="legal_frame">
              {LEGAL_FRAMES.map((frame) => <option key={frame} value={frame}>{tDynamic("legal", frame)}</option>)}
            </select>
          </Field>
          <button type="submit">{t("playback.exportSubmit")}</button>
          {exported ? <p role="status">{exported}</p> : null}
        </form>
      ) : null}
    </section>
  );
}
