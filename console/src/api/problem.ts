// RFC 9457 problem+json answers of the API, kept whole so a form can show each one next to its field.
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail: string;
  field?: string | null;
  request_id?: string;
  errors?: { field?: string | null; message?: string }[] | null;
}

export class ApiProblem extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail);
    this.name = "ApiProblem";
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
}

/** The problem carried by an error response (or a plain one built from its status when the body is not one). */
export function toProblem(body: unknown, status: number): Problem {
  if (body && typeof body === "object" && "detail" in body) {
    const candidate = body as Partial<Problem>;
    return { ...candidate, status: candidate.status ?? status, detail: String(candidate.detail) };
  }
  return { status, detail: `HTTP ${status}` };
}

/** One message per field named by the problem (its `field` and each of its `errors`); `null` key: the form. */
export function fieldMessages(problem: Problem): Map<string | null, string> {
  const messages = new Map<string | null, string>();
  for (const item of problem.errors ?? []) {
    const field = item.field ?? null;
    if (!messages.has(field) && item.message) messages.set(field, item.message);
  }
  const main = problem.field ?? null;
  if (!messages.has(main)) messages.set(main, problem.detail);
  return messages;
}
