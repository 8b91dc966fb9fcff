// Routing rules' hours: minutes of the local day (0..1440) as the "HH:MM" of a time field and back.
export function toClock(minute: number): string {
  const bounded = Math.min(1440, Math.max(0, Math.round(minute)));
  return `${String(Math.floor(bounded / 60)).padStart(2, "0")}:${String(bounded % 60).padStart(2, "0")}`;
}

/** "HH:MM" as minutes of the day; "24:00" (or an empty end) is the end of the day; NaN when unreadable. */
export function fromClock(clock: string, empty: number): number {
  if (!clock.trim()) return empty;
  const match = /^(\d{1,2}):(\d{2})$/.exec(clock.trim());
  if (!match) return Number.NaN;
  return Number(match[1]) * 60 + Number(match[2]);
}
