import { render, screen } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import { Codec } from "../src/pages/admin/cameras-admin";
import type { Camera, WallCamera } from "../src/pages/admin/data";
import { onPlainPlot, onTiles, placeLabels, scaleBarKm } from "../src/pages/admin/projection";

const marines = { name: "Mairie de Marines", lat: 49.1447, lon: 1.9836 };
const gare = { name: "Gare de Cergy-Préfecture", lat: 49.0367, lon: 2.0783 };

describe("sites map projection", () => {
  it("keeps west to east and north to south on the plain plot, inside the margins", () => {
    const { placed, kmPerUnit } = onPlainPlot([marines, gare], 900, 560, 60);
    const [m, g] = placed;
    expect(m!.x).toBeLessThan(g!.x);
    expect(m!.y).toBeLessThan(g!.y);
    for (const point of placed) {
      expect(point.x).toBeGreaterThanOrEqual(60);
      expect(point.x).toBeLessThanOrEqual(840);
      expect(point.y).toBeGreaterThanOrEqual(60);
      expect(point.y).toBeLessThanOrEqual(500);
    }
    // Marines to the Gare is about 12.9 km as the crow flies: the plot's scale says the same.
    const distance = Math.hypot(g!.x - m!.x, g!.y - m!.y) * kmPerUnit;
    expect(distance).toBeGreaterThan(12);
    expect(distance).toBeLessThan(14);
  });

  it("chooses a round scale bar", () => {
    expect(scaleBarKm(0.05, 900)).toBe(5);
    expect(scaleBarKm(0.001, 900)).toBe(0.1);
  });

  it("fits the sites on tiles at the highest zoom that holds them, with the tiles that cover the frame", () => {
    const { placed, tiles, zoom } = onTiles([marines, gare], "https://t.example/{z}/{x}/{y}.png", 900, 560, 60, 18);
    // 0.108° of latitude at 49° N spans about 480 px at zoom 12 (more than the 440 px inside the margins), 240 at 11.
    expect(zoom).toBe(11);
    expect(placed[0]!.x).toBeLessThan(placed[1]!.x);
    expect(tiles.length).toBeGreaterThan(0);
    expect(tiles.every((tile) => tile.href.startsWith("https://t.example/11/"))).toBe(true);
    expect(Math.min(...tiles.map((tile) => tile.x))).toBeLessThanOrEqual(0);
    expect(Math.max(...tiles.map((tile) => tile.x + tile.size))).toBeGreaterThanOrEqual(900);
  });
});

describe("camera codec", () => {
  const camera = { live_transcode: false } as Camera;
  it("flags an H.265 camera, and says when its live view is transcoded", () => {
    render(<Codec camera={camera} health={{ codec: "hevc" } as WallCamera} />);
    expect(screen.getByText("H.265 : illisible par les navigateurs")).toBeTruthy();
    render(<Codec camera={{ ...camera, live_transcode: true }} health={{ codec: "hevc" } as WallCamera} />);
    expect(screen.getByText("H.265 : transcodé en H.264 pour le direct")).toBeTruthy();
  });
  it("names another codec, or says none was seen yet", () => {
    render(<Codec camera={camera} health={{ codec: "h264" } as WallCamera} />);
    expect(screen.getByText("H264")).toBeTruthy();
    render(<Codec camera={camera} health={undefined} />);
    expect(screen.getByText("inconnu (aucun segment enregistré)")).toBeTruthy();
  });
});

describe("map labels", () => {
  it("pushes overlapping labels apart and keeps them inside the frame", () => {
    const labels = placeLabels([
      { x: 600, y: 480, text: "Parvis de la préfecture" },
      { x: 601, y: 484, text: "Gare de Cergy-Préfecture" },
      { x: 890, y: 100, text: "Maison départementale" },
    ], 900);
    expect(Math.abs(labels[0]!.y - labels[1]!.y)).toBeGreaterThanOrEqual(16);
    expect(labels[1]!.moved).toBe(true);
    expect(labels[0]!.moved).toBe(false);
    expect(labels[2]!.anchor).toBe("end");
  });
});
