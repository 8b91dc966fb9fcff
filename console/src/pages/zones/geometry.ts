// Normalised frame coordinates (0..1, origin top left) for the zones editor: what the API stores, clamped and
// rounded to what a person can place (1/10 000 of the frame).
export type Point = [number, number];
export type ShapeKind = "zone" | "line" | "mask";

export interface Shape {
  kind: ShapeKind;
  points: Point[];
}

const PRECISION = 10_000;

export function clampUnit(value: number): number {
  if (!Number.isFinite(value)) return 0;
  return Math.round(Math.min(1, Math.max(0, value)) * PRECISION) / PRECISION;
}

/** The normalised point under a pointer event on `element` (the frame's overlay). */
export function pointerPoint(event: { clientX: number; clientY: number }, element: Element): Point {
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return [0, 0];
  return [clampUnit((event.clientX - box.left) / box.width), clampUnit((event.clientY - box.top) / box.height)];
}

/** How many points a shape of this kind needs before it can be saved; a line is exactly two. */
export function minimumPoints(kind: ShapeKind): number {
  return kind === "line" ? 2 : 3;
}

export function canAddPoint(shape: Shape): boolean {
  return shape.kind !== "line" || shape.points.length < 2;
}

/** The arrowhead of a line a→b, drawn at b, in pixels of a frame `width` × `height`. */
export function arrowHead(a: Point, b: Point, width: number, height: number, size = 14): string {
  const [ax, ay] = [a[0] * width, a[1] * height];
  const [bx, by] = [b[0] * width, b[1] * height];
  const angle = Math.atan2(by - ay, bx - ax);
  const left = [bx - size * Math.cos(angle - Math.PI / 7), by - size * Math.sin(angle - Math.PI / 7)];
  const right = [bx - size * Math.cos(angle + Math.PI / 7), by - size * Math.sin(angle + Math.PI / 7)];
  return `${bx},${by} ${left[0]},${left[1]} ${right[0]},${right[1]}`;
}

export function pixels(points: readonly Point[], width: number, height: number): string {
  return points.map(([x, y]) => `${x * width},${y * height}`).join(" ");
}
