// The camera's current frame (its live sub stream, journaled with a motive) under an SVG overlay: saved zones, lines
// (with their a→b arrow) and privacy masks, and the shape being drawn: click to add a point, drag a point to move it.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import { t } from "../../i18n/fr";
import { type LiveStatus, LivePlayer } from "../../video/live-player";
import { statusText } from "../../video/live-tile";
import { arrowHead, canAddPoint, pixels, type Point, pointerPoint, type Shape } from "./geometry";

export interface SavedShape extends Shape {
  id: string;
  label: string;
}

interface Props {
  cameraId: string;
  cameraName: string;
  motive: string | null;
  saved: readonly SavedShape[];
  draft: Shape | null;
  onDraft: (shape: Shape) => void;
}

const HANDLE_RADIUS = 7;

export function FrameEditor(props: Props) {
  const video = useRef<HTMLVideoElement>(null);
  const overlay = useRef<SVGSVGElement>(null);
  const [status, setStatus] = useState<LiveStatus | null>(null);
  const [size, setSize] = useState<[number, number]>([640, 360]);
  const [dragging, setDragging] = useState<number | null>(null);

  useEffect(() => {
    if (!video.current || !props.motive) {
      setStatus(null);
      return;
    }
    const motive = props.motive;
    const player = new LivePlayer(video.current, async () => unwrap(await api.POST("/cameras/{camera_id}/live", {
      params: { path: { camera_id: props.cameraId } }, body: { motive, stream: "sub" },
    })), setStatus);
    player.start();
    return () => player.stop();
  }, [props.cameraId, props.motive]);

  useEffect(() => {
    const element = overlay.current;
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => {
      if (entry) setSize([Math.max(1, entry.contentRect.width), Math.max(1, entry.contentRect.height)]);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const [width, height] = size;
  const draft = props.draft;

  function addPoint(event: MouseEvent): void {
    if (!draft || dragging !== null || !overlay.current || !canAddPoint(draft)) return;
    props.onDraft({ ...draft, points: [...draft.points, pointerPoint(event, overlay.current)] });
  }

  function move(event: PointerEvent): void {
    if (!draft || dragging === null || !overlay.current) return;
    const points = draft.points.map((point, index): Point => (index === dragging
      ? pointerPoint(event, overlay.current as SVGSVGElement) : point));
    props.onDraft({ ...draft, points });
  }

  function startDrag(index: number, event: PointerEvent): void {
    event.stopPropagation();
    (event.currentTarget as Element).setPointerCapture?.(event.pointerId);
    setDragging(index);
  }

  function endDrag(event: PointerEvent): void {
    if (dragging === null) return;
    event.stopPropagation();
    // The click that ends a drag must not add a point.
    setTimeout(() => setDragging(null), 0);
  }

  return (
    <figure class="frame-editor" data-state={status?.state ?? "closed"}>
      <div class="frame">
        <video ref={video} muted playsInline autoPlay aria-label={t("zones.frameLabel", { name: props.cameraName })} />
        <svg ref={overlay} class={draft ? "overlay drawing" : "overlay"} viewBox={`0 0 ${width} ${height}`}
             role="img" aria-label={t("zones.overlayLabel")} data-testid="frame-overlay"
             onClick={addPoint} onPointerMove={move} onPointerUp={endDrag}>
          {props.saved.map((shape) => <ShapeView key={shape.id} shape={shape} width={width} height={height}
                                                 label={shape.label} />)}
          {draft ? <ShapeView shape={draft} width={width} height={height} label="" draft /> : null}
          {draft?.points.map(([x, y], index) => (
            <circle key={index} class="handle" cx={x * width} cy={y * height} r={HANDLE_RADIUS}
                    data-point={index} onPointerDown={(event) => startDrag(index, event)} />
          ))}
        </svg>
      </div>
      <figcaption>
        <span role="status">{status ? statusText(status) : t("zones.noLive")}</span>
      </figcaption>
    </figure>
  );
}

function ShapeView(props: { shape: Shape; width: number; height: number; label: string; draft?: boolean }) {
  const { shape, width, height } = props;
  const cls = `shape shape-${shape.kind}${props.draft ? " draft" : ""}`;
  const first = shape.points[0];
  const label = props.label && first ? (
    <text x={first[0] * width + 6} y={first[1] * height + 16} class="shape-label">{props.label}</text>
  ) : null;
  if (shape.kind === "line") {
    const [a, b] = shape.points;
    return (
      <g class={cls}>
        {a && b ? <line x1={a[0] * width} y1={a[1] * height} x2={b[0] * width} y2={b[1] * height} /> : null}
        {a && b ? <polygon class="arrow" points={arrowHead(a, b, width, height)} /> : null}
        {label}
      </g>
    );
  }
  return (
    <g class={cls}>
      {shape.points.length >= 3 ? <polygon points={pixels(shape.points, width, height)} />
                                : <polyline points={pixels(shape.points, width, height)} />}
      {label}
    </g>
  );
}
