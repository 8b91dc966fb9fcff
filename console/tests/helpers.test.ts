import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fieldMessages, toProblem } from "../src/api/problem";
import { formatDuration } from "../src/format";
import { fr, t, tDynamic } from "../src/i18n/fr";
import { matchesSearch } from "../src/pages/logbook";
import { shortcutFor } from "../src/pages/queue";
import { operatorLoad } from "../src/pages/supervisor";
import { latestStatus } from "../src/queue/alert-panel";
import { alertFromRaised } from "../src/queue/store";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

describe("problems", () => {
  it("puts each error next to its field and the rest on the form", () => {
    const problem = toProblem({ status: 400, detail: "Expected `str` of length >= 1", field: "motive",
      errors: [{ field: "motive", message: "Expected `str` of length >= 1" }, { field: "note", message: "too long" }] }, 400);
    const messages = fieldMessages(problem);
    expect(messages.get("motive")).toBe("Expected `str` of length >= 1");
    expect(messages.get("note")).toBe("too long");
    const general = fieldMessages(toProblem({ status: 409, detail: "another operator holds it" }, 409));
    expect(general.get(null)).toBe("another operator holds it");
  });

  it("survives a body that is not a problem", () => {
    expect(toProblem("<html>", 502)).toEqual({ status: 502, detail: "HTTP 502" });
  });
});

describe("catalogue", () => {
  it("fills placeholders and falls back to the raw value for an unknown dynamic key", () => {
    expect(t("queue.count", { n: 3 })).toBe("3 alarme(s) ouverte(s)");
    expect(tDynamic("state", "claimed")).toBe("prise en charge");
    expect(tDynamic("state", "unheard_of")).toBe("unheard_of");
  });

  it("holds every string: no page writes French inline, and none keeps anything in web storage", () => {
    const root = join(process.cwd(), "src");
    for (const file of sources(root)) {
      const text = readFileSync(file, "utf8");
      expect(text, file).not.toMatch(/localStorage|sessionStorage|indexedDB|document\.cookie/);
      if (file.endsWith("fr.ts")) continue;
      // A French word with an accent in a page is a string that escaped the catalogue.
      const literals = [...text.matchAll(/>([^<>{}]*[éèàùçê][^<>{}]*)</g)].map((m) => m[1]);
      expect(literals, file).toEqual([]);
    }
    expect(Object.keys(fr).length).toBeGreaterThan(100);
  });
});

describe("pages' logic", () => {
  it("formats durations", () => {
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(65)).toBe("1 min 05 s");
    expect(formatDuration(3_720)).toBe("1 h 02 min");
  });

  it("searches the main courante in text, action and kind", () => {
    const entry = { id: "1", tenant_id: "t", alert_id: null, author_id: null, kind: "alert", action: "alert.dispatched",
      text: "Équipage envoyé rue Pasteur", created_at: "2026-12-01T10:00:00Z" };
    expect(matchesSearch(entry, "pasteur")).toBe(true);
    expect(matchesSearch(entry, "DISPATCHED")).toBe(true);
    expect(matchesSearch(entry, "gare")).toBe(false);
    expect(matchesSearch(entry, "  ")).toBe(true);
  });

  it("counts each operator's load", () => {
    const base = alertFromRaised({ tenant_id: "t", occurred_at: "2026-12-01T10:00:00Z", alert_id: "a" });
    const load = operatorLoad([{ ...base, id: "1", claimed_by: "u2" }, { ...base, id: "2", claimed_by: "u1" },
      { ...base, id: "3", claimed_by: "u2" }, { ...base, id: "4", claimed_by: null }]);
    expect(load).toEqual([["u2", 2], ["u1", 1]]);
  });

  it("keeps each dispatch's furthest responder status", () => {
    const statuses = ["delivered", "en_route", "acknowledged"].map((status, i) => ({
      dispatch_id: "d1", officer_id: null, device_id: null, status, occurred_at: `2026-12-01T10:0${i}:00Z` }));
    expect(latestStatus({ dispatches: [], statuses }, "d1", "pending")).toBe("en_route");
    expect(latestStatus({ dispatches: [], statuses }, "d2", "pending")).toBe("pending");
  });

  it("never takes typing in a field for a shortcut", () => {
    const input = document.createElement("input");
    const press = (key: string, target: EventTarget) => {
      const event = new KeyboardEvent("keydown", { key });
      Object.defineProperty(event, "target", { value: target });
      return shortcutFor(event);
    };
    expect(press("c", document.body)).toBe("c");
    expect(press("c", input)).toBeNull();
    expect(press("q", document.body)).toBeNull();
  });
});
