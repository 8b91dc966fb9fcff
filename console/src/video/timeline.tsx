// A camera's timeline over the loaded interval: recorded spans and gaps as a bar (click to seek), the gaps also
// listed in words for screen readers, and the playing position.
import { formatDateTime, formatTime } from "../format";
import { t, tDynamic } from "../i18n/fr";
import type { components } from "../api/schema";

export type Timeline = components["schemas"]["Timeline"];

export function fraction(iso: string, start: number, end: number): number {
  return Math.min(1, Math.max(0, (Date.parse(iso) - start) / (end - start)));
}

export function TimelineBar(props: { timeline: Timeline; playing: Date | null; onSeek: (at: Date) => void }) {
  const start = Date.parse(props.timeline.start_at);
  const end = Date.parse(props.timeline.end_at);
  const box = (from: string, to: string) => {
    const left = fraction(from, start, end);
    return { left: `${left * 100}%`, width: `${Math.max(0.2, (fraction(to, start, end) - left) * 100)}%` };
  };
  function seek(event: MouseEvent): void {
    const rect = (event.currentTarget as HTMLElement).getBoundingClientRect();
    props.onSeek(new Date(start + ((event.clientX - rect.left) / rect.width) * (end - start)));
  }
  const gapText = (gap: Timeline["gaps"][number]) => gap.cause
    ? t("playback.gapCause", { from: formatTime(gap.start_at), to: formatTime(gap.end_at),
                                cause: tDynamic("gapCause", gap.cause) })
    : t("playback.gap", { from: formatTime(gap.start_at), to: formatTime(gap.end_at) });
  return (
    <div class="timeline-block">
      <h2 id="timeline-title">{t("playback.timeline")}</h2>
      <p>{t("playback.seekHint")}</p>
      <div class="timeline" onClick={seek} aria-hidden="true" data-testid="timeline">
        {props.timeline.recorded.map((span) => (
          <span key={span.start_at} class="span-recorded" style={box(span.start_at, span.end_at)}
                title={t("playback.recorded", { from: formatTime(span.start_at), to: formatTime(span.end_at) })} />
        ))}
        {props.timeline.gaps.map((gap) => (
          <span key={gap.start_at} class="span-gap" data-testid="timeline-gap" style={box(gap.start_at, gap.end_at)}
                title={gapText(gap)} />
        ))}
        {props.playing ? (
          <span class="cursor" style={{ left: `${fraction(props.playing.toISOString(), start, end) * 100}%` }} />
        ) : null}
      </div>
      <h3>{t("playback.gapsList")}</h3>
      {props.timeline.gaps.length === 0 ? <p>{t("playback.noGaps")}</p> : (
        <ul class="gaps" aria-labelledby="timeline-title">
          {props.timeline.gaps.map((gap) => <li key={gap.start_at} data-testid="gap-item" data-start={gap.start_at} data-end={gap.end_at}>{gapText(gap)}</li>)}
        </ul>
      )}
      {props.playing ? <p aria-live="off">{t("playback.playing", { t: formatDateTime(props.playing.toISOString()) })}</p>
                     : null}
    </div>
  );
}
