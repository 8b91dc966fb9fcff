// "Test connection": one frame from the camera itself, through the live gateway (a journaled ticket, the gateway's
// fMP4 in a MediaSource), copied to a still image as soon as it is decoded; the viewing then ends.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import { formatTime } from "../../format";
import { t } from "../../i18n/fr";
import { type LiveStatus, LivePlayer } from "../../video/live-player";

const GIVE_UP_MS = 30_000;

export interface ProbeResult {
  codec: string;
  width: number;
  height: number;
  at: string;
}

export function FrameProbe(props: { cameraId: string; name: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const [still, setStill] = useState<string | null>(null);
  const [result, setResult] = useState<ProbeResult | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    const element = video.current;
    if (!element) return;
    let codec = "";
    let lastReason = "";
    let done = false;
    let objectUrl: string | null = null;
    const player = new LivePlayer(element, async () => unwrap(await api.POST("/cameras/{camera_id}/live", {
      params: { path: { camera_id: props.cameraId } },
      body: { motive: t("admin.cameras.testMotive"), stream: "sub" },
    })), (status: LiveStatus) => {
      if (status.state === "online") codec = status.codec ?? "";
      if (status.state === "offline" && status.reason) lastReason = status.reason;
      if (status.state === "codec_unsupported" || status.state === "refused") {
        finish();
        setFailure(t("admin.cameras.testFailed", { reason: status.state === "codec_unsupported"
          ? t("admin.cameras.h265") : status.reason ?? "" }));
      }
    });
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      element.removeEventListener("loadeddata", capture);
      player.stop();
    };
    // The first decoded frame: drawn on a canvas (the MediaSource is this page's own, so the canvas is readable).
    const capture = (): void => {
      if (done || element.videoWidth === 0) return;
      const canvas = document.createElement("canvas");
      canvas.width = element.videoWidth;
      canvas.height = element.videoHeight;
      canvas.getContext("2d")?.drawImage(element, 0, 0);
      const size = { width: element.videoWidth, height: element.videoHeight };
      finish();
      canvas.toBlob((blob) => {
        if (!blob) return;
        objectUrl = URL.createObjectURL(blob);
        setStill(objectUrl);
        setResult({ codec, ...size, at: new Date().toISOString() });
      }, "image/jpeg", 0.9);
    };
    const timer = setTimeout(() => {
      if (done) return;
      finish();
      setFailure(lastReason ? t("admin.cameras.testTimeoutReason", { reason: lastReason })
                            : t("admin.cameras.testTimeout"));
    }, GIVE_UP_MS);
    element.addEventListener("loadeddata", capture);
    player.start();
    return () => {
      finish();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [props.cameraId]);

  return (
    <figure class="frame-probe" data-state={still ? "frame" : failure ? "failed" : "connecting"}>
      {still ? <img src={still} alt={t("admin.cameras.testFrame", { name: props.name })} /> : null}
      <video ref={video} muted playsInline class={still || failure ? "probe-hidden" : "probe-video"}
             aria-hidden="true" tabIndex={-1} />
      <figcaption role="status">
        {result ? t("admin.cameras.testOk", { t: formatTime(result.at), codec: result.codec,
                                              width: result.width, height: result.height })
                : failure ?? t("admin.cameras.testing")}
      </figcaption>
    </figure>
  );
}
