// Who works with images: the roles that open the live view and playback (the API checks again on every request).
export const OPERATORS = ["operator", "supervisor", "department_admin"] as const;
export const SUPERVISORS = ["supervisor", "department_admin", "auditor"] as const;

export function watchesImages(role: string | undefined): boolean {
  return (OPERATORS as readonly string[]).includes(role ?? "");
}
