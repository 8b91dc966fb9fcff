// Saves a CSV answered by the API: the bearer must be sent, so the page fetches it and hands the browser a blob.
import { ApiProblem, toProblem } from "../../api/problem";

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
  const url = URL.createObjectURL(result.data);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
