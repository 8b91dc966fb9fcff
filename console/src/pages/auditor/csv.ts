// Saves a CSV answered by the API: the bearer must be sent, so the page fetches it and hands the browser a blob.
import { ApiProblem, toProblem } from "../../api/problem";
import { saveDocument } from "../../components/download";

/** The period of a search form's `datetime-local` fields, as the API reads it (ISO 8601, UTC). */
export function periodQuery(since: string, until: string): { since?: string; until?: string } {
  return {
    ...(since ? { since: new Date(since).toISOString() } : {}),
    ...(until ? { until: new Date(until).toISOString() } : {}),
  };
}

export async function saveCsv(result: { data?: unknown; error?: unknown; response: Response }): Promise<void> {
  if (result.error !== undefined || !result.response.ok || !(result.data instanceof Blob)) {
    throw new ApiProblem(toProblem(result.error, result.response.status));
  }
  const disposition = result.response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "export.csv";
  saveDocument(result.data, name);
}
