// What the admin pages read from the API: every page of a list, and the types they show.
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { currentSession } from "../../auth/session";

export type Tenant = components["schemas"]["Tenant"];
export type Site = components["schemas"]["Site"];
export type Camera = components["schemas"]["Camera"];
export type Authorisation = components["schemas"]["Authorisation"];
export type AuthorisationExpiry = components["schemas"]["AuthorisationExpiry"];
export type Contract = components["schemas"]["Contract"];
export type CameraPlan = components["schemas"]["CameraPlan"];
export type Plan = components["schemas"]["Plan"];
export type WallCamera = components["schemas"]["WallCamera"];

const PAGE = 200;

interface Paged<T> {
  items: T[];
  next_cursor?: string | null;
}

/** Follows next_cursor until the list ends. */
async function everyPage<T>(load: (cursor: string | undefined) => Promise<Paged<T>>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await load(cursor);
    all.push(...page.items);
    if (!page.next_cursor) return all;
    cursor = page.next_cursor;
  }
}

export function loadTenants(): Promise<Tenant[]> {
  return everyPage(async (cursor) => unwrap(await api.GET("/tenants", {
    params: { query: { limit: PAGE, ...(cursor ? { cursor } : {}) } },
  })));
}

export function loadSites(): Promise<Site[]> {
  return everyPage(async (cursor) => unwrap(await api.GET("/sites", {
    params: { query: { limit: PAGE, ...(cursor ? { cursor } : {}) } },
  })));
}

export function loadCameras(): Promise<Camera[]> {
  return everyPage(async (cursor) => unwrap(await api.GET("/cameras", {
    params: { query: { limit: PAGE, ...(cursor ? { cursor } : {}) } },
  })));
}

export function loadContracts(tenantId: string): Promise<Contract[]> {
  return everyPage(async (cursor) => unwrap(await api.GET("/billing/contracts", {
    params: { query: { tenant_id: tenantId, limit: PAGE, ...(cursor ? { cursor } : {}) } },
  })));
}

export function isDepartmentAdmin(): boolean {
  return currentSession()?.role === "department_admin";
}

/** "2026-12-03" as the French read it. */
export function formatDate(day: string): string {
  const [year, month, date] = day.split("-");
  return `${date}/${month}/${year}`;
}
