// The keyboard's way to draw: the shape's points as a list of coordinates (0 to 1) to edit, add and remove.
import { t } from "../../i18n/fr";
import { canAddPoint, clampUnit, type Point, type Shape } from "./geometry";

export function CoordinatesList(props: { shape: Shape; onChange: (shape: Shape) => void; error?: string | undefined }) {
  const { shape } = props;

  function set(index: number, axis: 0 | 1, raw: string): void {
    const value = clampUnit(Number.parseFloat(raw.replace(",", ".")));
    props.onChange({ ...shape, points: shape.points.map((point, i): Point => {
      if (i !== index) return point;
      return axis === 0 ? [value, point[1]] : [point[0], value];
    }) });
  }

  return (
    <fieldset class={props.error ? "coordinates invalid" : "coordinates"}
              aria-describedby={props.error ? "shape-points-error" : undefined}>
      <legend>{t("zones.coordinates")}</legend>
      <p class="hint">{t("zones.coordinatesHint")}</p>
      <ol>
        {shape.points.map(([x, y], index) => (
          <li key={index}>
            <label>
              {t("zones.pointX", { n: index + 1 })}
              <input type="number" min={0} max={1} step="any" value={x}
                     onChange={(e) => set(index, 0, (e.currentTarget as HTMLInputElement).value)} />
            </label>
            <label>
              {t("zones.pointY", { n: index + 1 })}
              <input type="number" min={0} max={1} step="any" value={y}
                     onChange={(e) => set(index, 1, (e.currentTarget as HTMLInputElement).value)} />
            </label>
            <button type="button" class="secondary"
                    onClick={() => props.onChange({ ...shape, points: shape.points.filter((_, i) => i !== index) })}>
              {t("zones.removePoint", { n: index + 1 })}
            </button>
          </li>
        ))}
      </ol>
      {canAddPoint(shape) ? (
        <button type="button" class="secondary"
                onClick={() => props.onChange({ ...shape, points: [...shape.points, [0.5, 0.5]] })}>
          {t("zones.addPoint")}
        </button>
      ) : null}
      {props.error ? <p class="field-error" id="shape-points-error" role="alert">{props.error}</p> : null}
    </fieldset>
  );
}
