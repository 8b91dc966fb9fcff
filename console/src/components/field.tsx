// A labelled form field with the API's problem for it shown next to it (and tied to it for screen readers).
import type { ComponentChildren } from "preact";

export function Field(props: { id: string; label: string; error?: string | undefined; children: ComponentChildren }) {
  return (
    <div class={props.error ? "field invalid" : "field"}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.error ? (
        <p class="field-error" id={`${props.id}-error`} role="alert">
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

/** The aria attributes an input needs when its field has an error. */
export function describedBy(id: string, error: string | undefined): Record<string, string> {
  return error ? { "aria-invalid": "true", "aria-describedby": `${id}-error` } : {};
}
