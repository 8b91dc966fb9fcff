// How the mayor's pages write months, days, percentages, hours and amounts, and how they save a document.
import { t } from "../../i18n/fr";

const dayFormat = new Intl.DateTimeFormat("fr-FR", { dateStyle: "short", timeZone: "UTC" });
const decimal = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The current month as `YYYY-MM`, in the centre's time zone. */
export function currentMonth(now: Date = new Date()): string {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris", year: "numeric", month: "2-digit" })
    .formatToParts(now);
  const year = parts.find((part) => part.type === "year")?.value ?? "";
  const month = parts.find((part) => part.type === "month")?.value ?? "";
  return `${year}-${month}`;
}

/** A calendar day (`YYYY-MM-DD`) as a French short date; no time zone shift. */
export function formatDay(day: string): string {
  return dayFormat.format(new Date(`${day}T00:00:00Z`));
}

export function percent(value: number | string | null | undefined): string {
  return value === null || value === undefined ? t("mayor.notObserved") : t("mayor.percent", { value: decimal.format(Number(value)) });
}

export function euros(amount: string): string {
  return t("mayor.euros", { amount: decimal.format(Number(amount)) });
}
