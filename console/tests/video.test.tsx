import { render, screen } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import { fromLocalInput, positionOf, toLocalInput } from "../src/pages/playback";
import { hashParameter } from "../src/router";
import { flatten } from "../src/video/cameras";
import { statusText } from "../src/video/live-tile";
import { fraction, TimelineBar } from "../src/video/timeline";

describe("live tile status", () => {
  it("names each state the gateway reports", () => {
    expect(statusText({ state: "online" })).toBe("En direct");
    expect(statusText({ state: "online", transcoded: true })).toBe("En direct (transcodé)");
    expect(statusText({ state: "offline" })).toBe("Caméra hors ligne");
    expect(statusText({ state: "offline", since: "2026-12-03T02:00:00Z" })).toMatch(/^Caméra hors ligne depuis /);
    expect(statusText({ state: "codec_unsupported", codec: "hev1" })).toMatch(/H\.265/);
    expect(statusText({ state: "refused", reason: "viewer cap" })).toBe("Direct refusé : viewer cap");
    expect(statusText({ state: "connecting" })).toBe("Connexion…");
  });
});

describe("playback", () => {
  it("seeks in wall-clock time from the playlist's first segment", () => {
    const playback = { start_at: "2026-12-03T02:00:00Z" } as Parameters<typeof positionOf>[1];
    expect(positionOf(new Date("2026-12-03T02:01:30Z"), playback)).toBe(90);
    expect(positionOf(new Date("2026-12-03T01:59:00Z"), playback)).toBe(0);
  });

  it("round-trips the interval's local inputs", () => {
    const instant = new Date("2026-12-03T02:05:00Z");
    expect(fromLocalInput(toLocalInput(instant))).toBe(instant.toISOString());
  });

  it("reads the camera from the hash's query", () => {
    globalThis.location.hash = "#/relecture?camera=abc";
    expect(hashParameter("camera")).toBe("abc");
    expect(hashParameter("other")).toBeNull();
  });
});

describe("timeline", () => {
  const timeline = {
    camera_id: "c", start_at: "2026-12-03T02:00:00Z", end_at: "2026-12-03T02:10:00Z",
    recorded: [{ start_at: "2026-12-03T02:00:00Z", end_at: "2026-12-03T02:04:00Z" },
               { start_at: "2026-12-03T02:06:00Z", end_at: "2026-12-03T02:10:00Z" }],
    gaps: [{ start_at: "2026-12-03T02:04:00Z", end_at: "2026-12-03T02:06:00Z", cause: "camera_unreachable" as const,
             detail: null }],
  };

  it("places instants on the bar and clamps outside ones", () => {
    const start = Date.parse(timeline.start_at);
    const end = Date.parse(timeline.end_at);
    expect(fraction("2026-12-03T02:05:00Z", start, end)).toBe(0.5);
    expect(fraction("2026-12-03T01:00:00Z", start, end)).toBe(0);
    expect(fraction("2026-12-03T03:00:00Z", start, end)).toBe(1);
  });

  it("lists the gaps in words with their cause", () => {
    render(<TimelineBar timeline={timeline} playing={null} onSeek={() => undefined} />);
    const items = screen.getAllByTestId("gap-item");
    expect(items).toHaveLength(1);
    expect(items[0]?.textContent).toMatch(/caméra injoignable/);
    expect(screen.getAllByTestId("timeline-gap")).toHaveLength(1);
  });
});

describe("camera wall", () => {
  it("flattens communes and sites for the pickers", () => {
    const camera = { camera_id: "k", name: "Quais" } as never;
    const refs = flatten({ generated_at: "", gaps_since: "", counts: {}, communes: [
      { insee_code: "95127", name: "Cergy", sites: [{ site_id: "s", name: "Gare", kind: "transport", cameras: [camera] }] },
    ] });
    expect(refs).toEqual([{ camera, commune: "Cergy", insee: "95127", site: "Gare" }]);
  });
});
