// The sites on a map: over the configured tile source (VIGIE_MAP_TILE_URL), or, air-gapped (the default), a plain plot
// of their coordinates with a scale bar; the same sites listed below for keyboards and screen readers.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import { loadSites, loadTenants, type Site } from "./data";
import { onPlainPlot, onTiles, type Placed, placeLabels, scaleBarKm, type Tile } from "./projection";
import "./admin.css";

type MapConfig = components["schemas"]["MapConfig"];
type Located = Site & { lat: number; lon: number };

const WIDTH = 900;
const HEIGHT = 560;
const MARGIN = 60;
const PALETTE = ["#1d4ed8", "#b91c1c", "#047857", "#7c2d12", "#6d28d9", "#0f766e"];

export function SitesMapPage() {
  const [sites, setSites] = useState<Site[]>([]);
  const [tenantNames, setTenantNames] = useState<Map<string, string>>(new Map());
  const [config, setConfig] = useState<MapConfig | null>(null);
  const errors = useFormErrors([]);

  useEffect(() => {
    void (async () => {
      try {
        const [siteList, tenants, mapConfig] = await Promise.all([
          loadSites(), loadTenants(), api.GET("/map/config").then(unwrap),
        ]);
        setSites(siteList);
        setTenantNames(new Map(tenants.map((tenant) => [tenant.id, tenant.name])));
        setConfig(mapConfig);
      } catch (error) {
        errors.capture(error);
      }
    })();
  }, []);

  const located: Located[] = sites.flatMap((site) => site.latitude !== null && site.latitude !== undefined
    && site.longitude !== null && site.longitude !== undefined ? [{ ...site, lat: site.latitude, lon: site.longitude }] : []);
  const unlocated = sites.filter((site) => !located.some((candidate) => candidate.id === site.id));
  const tenantIds = [...new Set(sites.map((site) => site.tenant_id))];
  const colour = (tenantId: string): string => PALETTE[tenantIds.indexOf(tenantId) % PALETTE.length] ?? PALETTE[0]!;

  let placed: Placed<Located>[] = [];
  let tiles: Tile[] = [];
  let barKm: number | null = null;
  let barWidth = 0;
  if (config && located.length > 0) {
    if (config.tile_url) {
      ({ placed, tiles } = onTiles(located, config.tile_url, WIDTH, HEIGHT, MARGIN, config.max_zoom));
    } else {
      const plot = onPlainPlot(located, WIDTH, HEIGHT, MARGIN);
      placed = plot.placed;
      barKm = scaleBarKm(plot.kmPerUnit, WIDTH);
      barWidth = barKm / plot.kmPerUnit;
    }
  }

  const labels = placeLabels(placed.map(({ item, x, y }) => ({ x, y, text: item.name })), WIDTH);
  return (
    <section aria-labelledby="map-title">
      <h1 id="map-title">{t("admin.map.title")}</h1>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {config ? (
        <p id="map-source">{config.tile_url ? t("admin.map.tiles", { attribution: config.attribution ?? config.tile_url })
                                            : t("admin.map.plain")}</p>
      ) : null}
      {config && located.length > 0 ? (
        <svg class={`sites-map ${config.tile_url ? "tiled" : "plain"}`} viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
             role="img" aria-labelledby="map-svg-title" data-mode={config.tile_url ? "tiles" : "plain"}>
          <title id="map-svg-title">{t("admin.map.figure", { n: located.length })}</title>
          <rect x="0" y="0" width={WIDTH} height={HEIGHT} class="map-background" />
          {tiles.map((tile) => (
            <image key={tile.href} href={tile.href} x={tile.x} y={tile.y} width={tile.size} height={tile.size} />
          ))}
          {config.tile_url ? null : <PlainGrid />}
          {placed.map(({ item, x, y }, index) => {
            const label = labels[index]!;
            return (
              <g key={item.id} class="site-marker" data-site-id={item.id}>
                {label.moved ? <line x1={x} y1={y} x2={label.x} y2={label.y - 4} class="leader" /> : null}
                <circle cx={x} cy={y} r="7" fill={colour(item.tenant_id)} stroke="#ffffff" stroke-width="2" />
                <text x={label.x} y={label.y} text-anchor={label.anchor} class="site-label">{item.name}</text>
              </g>
            );
          })}
          {barKm !== null ? (
            <g class="scale-bar">
              <line x1={20} y1={HEIGHT - 24} x2={20 + barWidth} y2={HEIGHT - 24} stroke="#111827" stroke-width="3" />
              <text x={20} y={HEIGHT - 32} class="site-label">{t("admin.map.scale", { km: barKm })}</text>
            </g>
          ) : null}
          {config.tile_url ? null : (
            <g class="north">
              <path d={`M ${WIDTH - 30} 20 L ${WIDTH - 38} 44 L ${WIDTH - 30} 38 L ${WIDTH - 22} 44 Z`} fill="#111827" />
              <text x={WIDTH - 35} y={60} class="site-label">{t("admin.map.north")}</text>
            </g>
          )}
        </svg>
      ) : null}
      {config?.tile_url && config.attribution ? <p class="attribution">{config.attribution}</p> : null}
      {unlocated.length > 0 ? <p>{t("admin.map.noCoordinates", { names: unlocated.map((s) => s.name).join(", ") })}</p> : null}
      <h2 id="map-list-title">{t("admin.map.list")}</h2>
      <ul id="map-sites" class="map-legend" aria-labelledby="map-list-title">
        {located.map((site) => (
          <li key={site.id} data-site-id={site.id}>
            <svg width="12" height="12" aria-hidden="true"><circle cx="6" cy="6" r="5" fill={colour(site.tenant_id)} /></svg>{" "}
            <strong>{site.name}</strong> — {tenantNames.get(site.tenant_id) ?? ""} ({tDynamic("admin.siteKind", site.kind)},{" "}
            {site.insee_code}) : {t("admin.map.coordinates", { lat: site.lat.toFixed(4), lon: site.lon.toFixed(4) })}
          </li>
        ))}
      </ul>
    </section>
  );
}

function PlainGrid() {
  const lines = [];
  for (let x = 0; x <= WIDTH; x += 90) lines.push(<line key={`x${x}`} x1={x} y1={0} x2={x} y2={HEIGHT} class="grid" />);
  for (let y = 0; y <= HEIGHT; y += 80) lines.push(<line key={`y${y}`} x1={0} y1={y} x2={WIDTH} y2={y} class="grid" />);
  return <g aria-hidden="true">{lines}</g>;
}
