import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";

afterEach(cleanup);
import { describedBy, Field } from "../src/components/field";

describe("a form field", () => {
  it("shows the API's message next to the input and ties it to it", () => {
    render(
      <Field id="motive" label="Motif" error="Le motif est obligatoire">
        <input id="motive" {...describedBy("motive", "Le motif est obligatoire")} />
      </Field>,
    );
    const input = screen.getByLabelText("Motif");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    const message = document.getElementById(input.getAttribute("aria-describedby") ?? "");
    expect(message?.textContent).toBe("Le motif est obligatoire");
    expect(message?.getAttribute("role")).toBe("alert");
  });

  it("has no error markup without an error", () => {
    render(<Field id="x" label="X"><input id="x" {...describedBy("x", undefined)} /></Field>);
    expect(screen.getByLabelText("X").getAttribute("aria-invalid")).toBeNull();
    expect(document.querySelector(".field-error")).toBeNull();
  });
});
