// One live view: a <video> fed by a LivePlayer, with the camera's state over it (connecting, online, offline since,
// H.265 not playable, refused).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import { formatTime } from "../format";
import { t } from "../i18n/fr";
import { type LiveStatus, type LiveStream, LivePlayer } from "./live-player";

export function statusText(status: LiveStatus): string {
  switch (status.state) {
    case "online":
      return status.transcoded ? `${t("live.online")} (${t("live.transcoded")})` : t("live.online");
    case "offline":
      return status.since ? t("live.offlineSince", { t: formatTime(status.since) }) : t("live.offline");
    case "codec_unsupported":
      return t("live.codecUnsupported");
    case "refused":
      return t("live.refused", { reason: status.reason ?? "" });
    default:
      return t("live.connecting");
  }
}

export function LiveTile(props: { cameraId: string; name: string; stream: LiveStream; motive: string;
                                  onFullView?: () => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [status, setStatus] = useState<LiveStatus>({ state: "connecting" });

  useEffect(() => {
    if (!video.current) return;
    const player = new LivePlayer(video.current, async () => unwrap(await api.POST("/cameras/{camera_id}/live", {
      params: { path: { camera_id: props.cameraId } },
      body: { motive: props.motive, stream: props.stream },
    })), setStatus);
    player.start();
    return () => player.stop();
  }, [props.cameraId, props.stream, props.motive]);

  const label = t("live.tileLabel", { name: props.name });
  return (
    <figure class={`live-tile live-${status.state}`} data-camera-id={props.cameraId} data-state={status.state}>
      <video ref={video} muted playsInline autoPlay aria-label={label} />
      <figcaption>
        <strong>{props.name}</strong>
        <span class="live-status" role="status">{statusText(status)}</span>
        {props.onFullView ? (
          <button type="button" class="secondary" onClick={props.onFullView}>
            {t("live.fullView", { name: props.name })}
          </button>
        ) : null}
      </figcaption>
    </figure>
  );
}
