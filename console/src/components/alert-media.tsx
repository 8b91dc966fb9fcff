// The alert's images: its snapshot and its clip, each opened on request with a motive (journaled by the API).
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import { ApiProblem, toProblem } from "../api/problem";
import { currentSession } from "../auth/session";
import { t } from "../i18n/fr";
import type { Alert } from "../queue/store";
import { describedBy, Field } from "./field";
import { useFormErrors } from "./use-problem";

/** The snapshot is a JPEG answered by POST /alerts/{id}/snapshot/view: fetched as a blob, shown from memory. */
async function fetchSnapshot(alertId: string, motive: string): Promise<Blob> {
  const session = currentSession();
  const response = await fetch(`/alerts/${alertId}/snapshot/view`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Vigie-Console": "1",
      ...(session ? { Authorization: `Bearer ${session.accessToken}` } : {}),
    },
    body: JSON.stringify({ motive }),
  });
  if (!response.ok) {
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    throw new ApiProblem(toProblem(body, response.status));
  }
  return response.blob();
}

export function AlertMedia(props: { alert: Alert; onViewed?: (media: "snapshot" | "clip", motive: string) => void }) {
  const { alert } = props;
  const [snapshotUrl, setSnapshotUrl] = useState<string | null>(null);
  const [clipUrl, setClipUrl] = useState<string | null>(null);
  const [motive, setMotive] = useState("");
  const errors = useFormErrors(["motive"]);
  const motiveId = `media-motive-${alert.id}`;

  useEffect(() => {
    setClipUrl(null);
    setSnapshotUrl(null);
    errors.clear();
  }, [alert.id]);
  useEffect(() => () => {
    if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
  }, [snapshotUrl]);

  async function showSnapshot(): Promise<void> {
    errors.clear();
    try {
      setSnapshotUrl(URL.createObjectURL(await fetchSnapshot(alert.id, motive)));
      props.onViewed?.("snapshot", motive);
    } catch (error) {
      errors.capture(error);
    }
  }

  async function showClip(): Promise<void> {
    errors.clear();
    try {
      const item = unwrap(await api.POST("/alerts/{alert_id}/clip/view", {
        params: { path: { alert_id: alert.id } },
        body: { motive },
      }));
      setClipUrl(item.url);
      props.onViewed?.("clip", motive);
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <section class="media" aria-labelledby={`media-title-${alert.id}`}>
      <h2 id={`media-title-${alert.id}`}>{t("media.title")}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <Field id={motiveId} label={t("media.motive")} error={errors.field("motive")}>
        <input id={motiveId} name="motive" value={motive}
               onInput={(event) => setMotive((event.currentTarget as HTMLInputElement).value)}
               {...describedBy(motiveId, errors.field("motive"))} />
      </Field>
      <div class="actions">
        {alert.snapshot_key ? (
          <button type="button" class="secondary" onClick={() => void showSnapshot()}>{t("media.showSnapshot")}</button>
        ) : null}
        {alert.clip_status === "attached" ? (
          <button type="button" class="secondary" onClick={() => void showClip()}>{t("media.showClip")}</button>
        ) : (
          <p>{alert.clip_status === "pending" ? t("media.clipPending") : t("media.clipUnavailable")}</p>
        )}
      </div>
      {snapshotUrl ? <img src={snapshotUrl} alt={t("media.snapshotAlt")} /> : null}
      {clipUrl ? (
        <video src={clipUrl} controls autoPlay muted aria-label={t("media.clipLabel")} data-testid="alert-clip" />
      ) : null}
    </section>
  );
}
