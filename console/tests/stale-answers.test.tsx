import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonResponse, requestOf } from "./http";

function entry(text: string) {
  return { id: text, text, action: "note", kind: "free", alert_id: null, author_id: "u", tenant_id: "t",
           created_at: "2026-12-05T02:00:00Z" };
}

describe("an answer for what is no longer shown", () => {
  beforeEach(() => vi.resetModules());
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("is dropped by the logbook when another period was chosen meanwhile", async () => {
    let answerEightHours: () => void = () => undefined;
    const eightHoursAnswered = new Promise<void>((resolve) => { answerEightHours = resolve; });
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL) => {
      const url = new URL(requestOf(input).url);
      if (url.pathname === "/logbook/handovers") return jsonResponse(200, []);
      const hours = url.searchParams.get("hours");
      if (hours === "8") {
        await eightHoursAnswered;
        return jsonResponse(200, { items: [entry("ligne des 8 dernières heures")], next_cursor: null });
      }
      return jsonResponse(200, { items: [entry(`ligne des ${hours} dernières heures`)], next_cursor: null });
    }));
    const { LogbookPage } = await import("../src/pages/logbook");
    render(<LogbookPage />);
    const period = screen.getByLabelText("Période (heures)");
    fireEvent.change(period, { target: { value: "8" } });
    fireEvent.change(period, { target: { value: "72" } });
    await waitFor(() => expect(screen.getByText("ligne des 72 dernières heures")).toBeTruthy());

    answerEightHours();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.getByText("ligne des 72 dernières heures")).toBeTruthy();
    expect(screen.queryByText("ligne des 8 dernières heures")).toBeNull();
  });

  it("is told apart by the key the component was last rendered with", async () => {
    const { useStillShown } = await import("../src/components/use-current");
    const checks: ((candidate: string) => boolean)[] = [];
    function Probe(props: { camera: string }) {
      checks.push(useStillShown(props.camera));
      return <p>{props.camera}</p>;
    }
    const { rerender } = render(<Probe camera="a" />);
    const firstCheck = checks[0]!;
    expect(firstCheck("a")).toBe(true);
    rerender(<Probe camera="b" />);
    // A check taken while "a" was shown answers for what is shown now.
    expect(firstCheck("a")).toBe(false);
    expect(firstCheck("b")).toBe(true);
  });
});
