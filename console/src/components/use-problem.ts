// Form errors from the API's problem+json: each one under its field, the rest at the top of the form.
import { useState } from "preact/hooks";
import { ApiProblem, fieldMessages } from "../api/problem";
import { t } from "../i18n/fr";

export interface FormErrors {
  field(name: string): string | undefined;
  form: string | undefined;
  capture(error: unknown): void;
  clear(): void;
}

export function useFormErrors(fields: readonly string[]): FormErrors {
  const [messages, setMessages] = useState<Map<string | null, string>>(new Map());
  return {
    field: (name) => messages.get(name),
    form: [...messages.entries()].find(([name]) => name === null || !fields.includes(name))?.[1],
    capture(error) {
      if (error instanceof ApiProblem) setMessages(fieldMessages(error.problem));
      else setMessages(new Map([[null, t("error.network")]]));
    },
    clear: () => setMessages(new Map()),
  };
}
