import { render, waitFor } from "@testing-library/preact";
import { describe, expect, it, vi } from "vitest";

const responses: Record<string, unknown> = {};
vi.mock("../src/api/client", () => ({
  api: { GET: async (path: string) => ({ data: responses[path], response: new Response(null, { status: 200 }) }) },
  unwrap: (result: { data: unknown }) => result.data,
}));

const { SitesMapPage } = await import("../src/pages/admin/sites-map");

const tenant = "00000000-0000-0000-0000-000000000001";
function site(id: string, name: string, lat: number | null, lon: number | null) {
  return { id, tenant_id: tenant, name, kind: "public_space", address: null, insee_code: "95370", latitude: lat,
           longitude: lon, created_at: "", updated_at: "" };
}

function serve(tileUrl: string | null): void {
  responses["/sites"] = { items: [site("a", "Mairie de Marines", 49.1447, 1.9836), site("b", "Gare", 49.0367, 2.0783),
                                  site("c", "Sans coordonnées", null, null)], next_cursor: null };
  responses["/tenants"] = { items: [{ id: tenant, name: "Marines" }], next_cursor: null };
  responses["/map/config"] = { tile_url: tileUrl, attribution: tileUrl ? "© Tuiles de test" : null, max_zoom: 18 };
}

describe("sites map page", () => {
  it("draws the configured tiles under the sites, with the attribution", async () => {
    serve("https://tiles.example.fr/{z}/{x}/{y}.png");
    const { container } = render(<SitesMapPage />);
    await waitFor(() => expect(container.querySelector("svg.sites-map")).not.toBeNull());
    const svg = container.querySelector("svg.sites-map")!;
    expect(svg.getAttribute("data-mode")).toBe("tiles");
    const hrefs = [...svg.querySelectorAll("image")].map((image) => image.getAttribute("href") ?? "");
    expect(hrefs.length).toBeGreaterThan(0);
    expect(hrefs.every((href) => /^https:\/\/tiles\.example\.fr\/11\/\d+\/\d+\.png$/.test(href))).toBe(true);
    expect(svg.querySelectorAll(".site-marker")).toHaveLength(2);
    expect(container.textContent).toContain("© Tuiles de test");
    expect(container.textContent).toContain("Sites sans coordonnées : Sans coordonnées");
  });

  it("plots the coordinates on a plain grid without a tile source", async () => {
    serve(null);
    const { container } = render(<SitesMapPage />);
    await waitFor(() => expect(container.querySelector("svg.sites-map")).not.toBeNull());
    const svg = container.querySelector("svg.sites-map")!;
    expect(svg.getAttribute("data-mode")).toBe("plain");
    expect(svg.querySelectorAll("image")).toHaveLength(0);
    expect(svg.querySelectorAll(".site-marker")).toHaveLength(2);
    expect(svg.querySelector(".scale-bar")?.textContent).toMatch(/km$/);
  });
});
