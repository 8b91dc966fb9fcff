import { describe, expect, it } from "vitest";
import { fromClock, toClock } from "../src/pages/forces/minutes";
import { daysLeft, formatDay, habilitationState } from "../src/pages/users/habilitation";
import { arrowHead, canAddPoint, clampUnit, minimumPoints, pixels, pointerPoint } from "../src/pages/zones/geometry";

describe("zones geometry", () => {
  it("clamps and rounds to the frame", () => {
    expect(clampUnit(-0.2)).toBe(0);
    expect(clampUnit(1.7)).toBe(1);
    expect(clampUnit(0.123456)).toBe(0.1235);
    expect(clampUnit(Number.NaN)).toBe(0);
  });

  it("reads a pointer as a fraction of the overlay", () => {
    const element = { getBoundingClientRect: () => ({ left: 100, top: 50, width: 400, height: 200 }) } as Element;
    expect(pointerPoint({ clientX: 300, clientY: 100 }, element)).toEqual([0.5, 0.25]);
    expect(pointerPoint({ clientX: 0, clientY: 400 }, element)).toEqual([0, 1]);
  });

  it("takes two points for a line and three or more for a zone or a mask", () => {
    expect(minimumPoints("line")).toBe(2);
    expect(minimumPoints("zone")).toBe(3);
    expect(minimumPoints("mask")).toBe(3);
    expect(canAddPoint({ kind: "line", points: [[0, 0], [1, 1]] })).toBe(false);
    expect(canAddPoint({ kind: "zone", points: [[0, 0], [1, 1], [0, 1]] })).toBe(true);
  });

  it("draws in pixels, the arrowhead at the line's end", () => {
    expect(pixels([[0.5, 0.5], [1, 0]], 200, 100)).toBe("100,50 200,0");
    const tip = arrowHead([0, 0.5], [1, 0.5], 100, 100).split(" ")[0];
    expect(tip).toBe("100,50");
  });
});

describe("habilitation", () => {
  const today = new Date(2026, 11, 3);
  it("counts the days left and warns within 30 days", () => {
    expect(daysLeft("2026-12-13", today)).toBe(10);
    expect(habilitationState("2026-12-13", today)).toBe("expiring");
    expect(habilitationState("2027-06-01", today)).toBe("valid");
    expect(habilitationState("2026-12-02", today)).toBe("expired");
    expect(habilitationState(null, today)).toBe("none");
  });

  it("writes a day the French way", () => {
    expect(formatDay("2026-12-13")).toBe("13/12/2026");
  });
});

describe("routing hours", () => {
  it("turns HH:MM into minutes of the day and back", () => {
    expect(fromClock("22:00", 0)).toBe(1320);
    expect(fromClock("24:00", 0)).toBe(1440);
    expect(fromClock("", 1440)).toBe(1440);
    expect(Number.isNaN(fromClock("soon", 0))).toBe(true);
    expect(toClock(1440)).toBe("24:00");
    expect(toClock(75)).toBe("01:15");
  });
});
