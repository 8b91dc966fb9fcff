// The typed API client, generated from the API's OpenAPI document (schema.d.ts): every call checks its path,
// parameters and body against the API at build time. The bearer is added here; a 401 refreshes once and retries.
import createClient, { type Middleware } from "openapi-fetch";
import { currentSession, refreshSession } from "../auth/session";
import { ApiProblem, toProblem } from "./problem";
import type { paths } from "./schema";

const retries = new Map<string, Request>();

const bearer: Middleware = {
  onRequest({ request, id }) {
    const session = currentSession();
    if (session) request.headers.set("Authorization", `Bearer ${session.accessToken}`);
    request.headers.set("X-Vigie-Console", "1");
    retries.set(id, request.clone());
    return request;
  },
  async onResponse({ response, id }) {
    const original = retries.get(id);
    retries.delete(id);
    if (response.status !== 401 || !original || original.headers.get("X-Vigie-Retried")) return response;
    const session = await refreshSession();
    if (!session) return response;
    const retry = new Request(original, { headers: new Headers(original.headers) });
    retry.headers.set("Authorization", `Bearer ${session.accessToken}`);
    retry.headers.set("X-Vigie-Retried", "1");
    return fetch(retry);
  },
  onError({ id }) {
    retries.delete(id);
  },
};

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "", credentials: "same-origin" });
api.use(bearer);

/** The data of an openapi-fetch result, or an ApiProblem thrown with the API's problem+json. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiProblem(toProblem(result.error, result.response.status));
  }
  return result.data as T;
}
