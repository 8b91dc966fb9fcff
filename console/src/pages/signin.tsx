// Sign-in: email and password, then the second factor when the role needs one.
import { useState } from "preact/hooks";
import { secondFactor, signIn } from "../auth/session";
import { describedBy, Field } from "../components/field";
import { useFormErrors } from "../components/use-problem";
import { t } from "../i18n/fr";

export function SignInPage() {
  const [challenge, setChallenge] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(["email", "password", "code"]);

  async function submitPassword(event: Event): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    setBusy(true);
    errors.clear();
    try {
      const step = await signIn(String(form.get("email") ?? ""), String(form.get("password") ?? ""));
      if (step.kind === "second-factor") setChallenge(step.challenge);
    } catch (error) {
      errors.capture(error);
    } finally {
      setBusy(false);
    }
  }

  async function submitCode(event: Event): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    if (!challenge) return;
    setBusy(true);
    errors.clear();
    try {
      await secondFactor(challenge, String(form.get("code") ?? "").trim());
    } catch (error) {
      errors.capture(error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="contenu" class="centered">
      <div class="card signin">
        <h1>{challenge ? t("signin.totpTitle") : t("signin.title")}</h1>
        {errors.form ? (
          <p class="form-error" role="alert">
            {errors.form}
          </p>
        ) : null}
        {challenge ? (
          <form onSubmit={(event) => void submitCode(event)} noValidate>
            <Field id="code" label={t("signin.totp")} error={errors.field("code")}>
              <input id="code" name="code" inputMode="numeric" autoComplete="one-time-code" required
                     {...describedBy("code", errors.field("code"))} />
            </Field>
            <button type="submit" disabled={busy}>
              {t("signin.totpSubmit")}
            </button>
            <button type="button" class="secondary" onClick={() => setChallenge(null)}>
              {t("signin.back")}
            </button>
          </form>
        ) : (
          <form onSubmit={(event) => void submitPassword(event)} noValidate>
            <Field id="email" label={t("signin.email")} error={errors.field("email")}>
              <input id="email" name="email" type="email" autoComplete="username" required
                     {...describedBy("email", errors.field("email"))} />
            </Field>
            <Field id="password" label={t("signin.password")} error={errors.field("password")}>
              <input id="password" name="password" type="password" autoComplete="current-password" required
                     {...describedBy("password", errors.field("password"))} />
            </Field>
            <button type="submit" disabled={busy}>
              {t("signin.submit")}
            </button>
          </form>
        )}
      </div>
    </main>
  );
}
