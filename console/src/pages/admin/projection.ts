// Where each site goes on the map: Web Mercator over tiles (the zoom that fits every site), or, without a tile source,
// a plain equirectangular plot scaled to the sites' own extent.

export interface Point {
  lat: number;
  lon: number;
}

export interface Placed<T> {
  item: T;
  x: number;
  y: number;
}

export interface Tile {
  href: string;
  x: number;
  y: number;
  size: number;
}

export const TILE_SIZE = 256;
const EARTH_KM_PER_DEGREE = 111.32;

function mercator(point: Point, zoom: number): { x: number; y: number } {
  const world = TILE_SIZE * 2 ** zoom;
  const sin = Math.sin((point.lat * Math.PI) / 180);
  return {
    x: ((point.lon + 180) / 360) * world,
    y: (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * world,
  };
}

/** Sites on tiles: the highest zoom (up to maxZoom) at which every site fits inside the frame with its margin. */
export function onTiles<T extends Point>(items: T[], template: string, width: number, height: number,
                                         margin: number, maxZoom: number): { placed: Placed<T>[]; tiles: Tile[];
                                                                             zoom: number } {
  let zoom = maxZoom;
  for (; zoom > 1; zoom--) {
    const xs = items.map((item) => mercator(item, zoom));
    const spanX = Math.max(...xs.map((p) => p.x)) - Math.min(...xs.map((p) => p.x));
    const spanY = Math.max(...xs.map((p) => p.y)) - Math.min(...xs.map((p) => p.y));
    if (spanX <= width - 2 * margin && spanY <= height - 2 * margin) break;
  }
  const points = items.map((item) => mercator(item, zoom));
  const centreX = (Math.max(...points.map((p) => p.x)) + Math.min(...points.map((p) => p.x))) / 2;
  const centreY = (Math.max(...points.map((p) => p.y)) + Math.min(...points.map((p) => p.y))) / 2;
  const left = centreX - width / 2;
  const top = centreY - height / 2;
  const count = 2 ** zoom;
  const tiles: Tile[] = [];
  for (let ty = Math.floor(top / TILE_SIZE); ty <= Math.floor((top + height) / TILE_SIZE); ty++) {
    if (ty < 0 || ty >= count) continue;
    for (let tx = Math.floor(left / TILE_SIZE); tx <= Math.floor((left + width) / TILE_SIZE); tx++) {
      const wrapped = ((tx % count) + count) % count;
      tiles.push({
        href: template.replace("{z}", String(zoom)).replace("{x}", String(wrapped)).replace("{y}", String(ty)),
        x: tx * TILE_SIZE - left, y: ty * TILE_SIZE - top, size: TILE_SIZE,
      });
    }
  }
  return { placed: items.map((item, i) => ({ item, x: points[i]!.x - left, y: points[i]!.y - top })), tiles, zoom };
}

/** Sites on a plain plot: longitude shrunk by the cosine of the mean latitude, so distances keep their proportions;
 * also the plot's scale (kilometres per unit) for its scale bar. */
export function onPlainPlot<T extends Point>(items: T[], width: number, height: number,
                                             margin: number): { placed: Placed<T>[]; kmPerUnit: number } {
  const meanLat = items.reduce((sum, item) => sum + item.lat, 0) / Math.max(items.length, 1);
  const shrink = Math.cos((meanLat * Math.PI) / 180);
  const xs = items.map((item) => item.lon * shrink);
  const ys = items.map((item) => item.lat);
  const minX = Math.min(...xs);
  const maxY = Math.max(...ys);
  // A single site (or sites at one place) still gets a 2 km wide frame around it.
  const spanX = Math.max(Math.max(...xs) - minX, 0.02);
  const spanY = Math.max(maxY - Math.min(...ys), 0.02);
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  return {
    placed: items.map((item, i) => ({ item, x: offsetX + (xs[i]! - minX) * scale, y: offsetY + (maxY - ys[i]!) * scale })),
    kmPerUnit: EARTH_KM_PER_DEGREE / scale,
  };
}

/** A round length for a scale bar about a fifth of the plot's width. */
export function scaleBarKm(kmPerUnit: number, width: number): number {
  const target = (kmPerUnit * width) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(target));
  return [1, 2, 5, 10].map((step) => step * magnitude).filter((km) => km <= target).at(-1) ?? magnitude;
}

export interface Label {
  x: number;
  y: number;
  anchor: "start" | "end";
  /** Whether the label was pushed away from its marker (then a leader line joins them). */
  moved: boolean;
}

/** Labels beside their markers, pushed down line by line until none overlaps another (sites of one town are often
 * a few hundred metres apart), and to the marker's left where the frame's right edge would cut them. */
export function placeLabels(points: { x: number; y: number; text: string }[], width: number,
                            lineHeight = 16, charWidth = 7.2): Label[] {
  const boxes: { left: number; right: number; top: number }[] = [];
  const labels: Label[] = new Array<Label>(points.length);
  const order = points.map((point, index) => ({ point, index })).sort((a, b) => a.point.y - b.point.y);
  for (const { point, index } of order) {
    const textWidth = point.text.length * charWidth;
    const anchor = point.x + 10 + textWidth > width ? "end" : "start";
    const left = anchor === "start" ? point.x + 10 : point.x - 10 - textWidth;
    let top = point.y - lineHeight / 2;
    while (boxes.some((box) => box.left < left + textWidth && left < box.right && Math.abs(box.top - top) < lineHeight)) {
      top += lineHeight;
    }
    boxes.push({ left, right: left + textWidth, top });
    labels[index] = { x: anchor === "start" ? point.x + 10 : point.x - 10, y: top + lineHeight * 0.75, anchor,
                      moved: Math.abs(top - (point.y - lineHeight / 2)) > 0.5 };
  }
  return labels;
}
