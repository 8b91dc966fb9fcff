// Sign-in: email and password, then the second factor when the role needs one.
import { useEffect, useState } from "preact/hooks";
import { secondFactor, signIn, signInOptions } from "../auth/session";
import { describedBy, Field } from "../components/field";
import { useFormErrors } from "../components/use-problem";
import { t } from "../i18n/fr";
import { hashParameter } from "../router";

export function SignInPage() {
  // Back from the identity provider: the API's callback names the second factor's challenge, or why it refused.
  const [challenge, setChallenge] = useState<string | null>(() => hashParameter("second-factor"));
  const [refusal] = useState<string | null>(() => hashParameter("refus"));
  const [oidc, setOidc] = useState(false);
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(["email", "password", "code"]);

  useEffect(() => {
    // The challenge is spent once read: a reload or a bookmark must not carry it.
    if (hashParameter("second-factor") || hashParameter("refus")) history.replaceState(null, "", "#/");
    void signInOptions().then((options) => setOidc(options.oidc));
  }, []);

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
        {refusal && !errors.form ? (
          <p class="form-error" role="alert">
            {t("signin.oidcRefused", { detail: refusal })}
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
            {oidc ? (
              <a class="button secondary" href="/auth/console/oidc/start">
                {t("signin.oidc")}
              </a>
            ) : null}
          </form>
        )}
      </div>
    </main>
  );
}
