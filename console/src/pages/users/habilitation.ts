// The habilitation of a CSU agent (agrément, enquiry, training): when it ends and how soon to warn.
export const HABILITATED_ROLES: readonly string[] = ["operator", "supervisor"];
export const WARN_DAYS = 30;

export type HabilitationState = "none" | "valid" | "expiring" | "expired";

/** Whole days from `today` to `expiresOn` (both calendar days, yyyy-mm-dd); negative once it has passed. */
export function daysLeft(expiresOn: string, today: Date = new Date()): number {
  const [year, month, day] = expiresOn.split("-").map(Number);
  const end = Date.UTC(year ?? 1970, (month ?? 1) - 1, day ?? 1);
  const start = Date.UTC(today.getFullYear(), today.getMonth(), today.getDate());
  return Math.round((end - start) / 86_400_000);
}

export function habilitationState(expiresOn: string | null | undefined, today: Date = new Date()): HabilitationState {
  if (!expiresOn) return "none";
  const left = daysLeft(expiresOn, today);
  if (left < 0) return "expired";
  return left <= WARN_DAYS ? "expiring" : "valid";
}

const dayFormat = new Intl.DateTimeFormat("fr-FR", { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" });

/** A calendar day (yyyy-mm-dd) as the French read it: 13/12/2026. */
export function formatDay(day: string): string {
  const [year, month, date] = day.split("-").map(Number);
  return dayFormat.format(new Date(Date.UTC(year ?? 1970, (month ?? 1) - 1, date ?? 1)));
}
