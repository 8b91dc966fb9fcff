// The enrolment link's page, open without a session: the link's token comes in the fragment (no server ever receives
// it), is taken off the address bar at once and sent only in the X-Enrolment-Token header. The person reads what the
// link offers, scans the second factor drawn for this view and sets their own password.
import { useEffect, useState } from "preact/hooks";
import { encode } from "uqr";
import { api, unwrap } from "../../api/client";
import { ApiProblem } from "../../api/problem";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { hashParameter } from "../../router";
import "./enrolment.css";

type EnrolmentView = components["schemas"]["EnrolmentView"];
type Stage =
  | { kind: "loading" }
  | { kind: "refused"; message: string }
  | { kind: "open"; view: EnrolmentView }
  | { kind: "done"; email: string };

export const ENROLMENT_PATH = "/inscription";

export function EnrolmentPage() {
  // Read once: a reload, a bookmark or the browser's history must not keep the token.
  const [token] = useState<string | null>(() => hashParameter("jeton"));
  const [stage, setStage] = useState<Stage>({ kind: "loading" });

  useEffect(() => {
    history.replaceState(null, "", `#${ENROLMENT_PATH}`);
    if (!token) {
      setStage({ kind: "refused", message: t("enrolment.noToken") });
      return;
    }
    // Each view draws a fresh second factor (only the latest is accepted): the link is read once per page.
    void api.GET("/auth/enrolment", { params: { header: { "X-Enrolment-Token": token } } })
      .then(unwrap)
      .then((view) => setStage({ kind: "open", view }))
      .catch((error: unknown) => setStage({ kind: "refused", message: refusalOf(error) }));
  }, [token]);

  const title = stage.kind === "open" && stage.view.purpose === "reenrolment"
    ? t("enrolment.titleReenrolment") : t("enrolment.titleInvitation");
  return (
    <main id="contenu" class="centered">
      <div class="card enrolment" aria-busy={stage.kind === "loading" ? "true" : undefined}>
        <h1>{stage.kind === "done" ? t("enrolment.doneTitle") : title}</h1>
        {stage.kind === "loading" ? <p>{t("enrolment.loading")}</p> : null}
        {stage.kind === "refused" ? <p class="form-error" role="alert">{stage.message}</p> : null}
        {stage.kind === "open" && token ? (
          <EnrolmentForm token={token} view={stage.view} onDone={(email) => setStage({ kind: "done", email })} />
        ) : null}
        {stage.kind === "done" ? (
          <>
            <p role="status">{t("enrolment.done", { email: stage.email })}</p>
            <a class="button" href="/console/#/">{t("enrolment.signIn")}</a>
          </>
        ) : null}
      </div>
    </main>
  );
}

function refusalOf(error: unknown): string {
  if (error instanceof ApiProblem && (error.status === 401 || error.status === 403)) return t("enrolment.refused");
  if (error instanceof ApiProblem) return error.problem.detail;
  return t("error.network");
}

function EnrolmentForm(props: { token: string; view: EnrolmentView; onDone: (email: string) => void }) {
  const { view } = props;
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(["password", "confirm", "code"]);
  const [mismatch, setMismatch] = useState(false);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const password = String(form.get("password") ?? "");
    errors.clear();
    if (password !== String(form.get("confirm") ?? "")) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    setBusy(true);
    try {
      const code = String(form.get("code") ?? "").trim();
      const done = unwrap(await api.POST("/auth/enrolment", {
        params: { header: { "X-Enrolment-Token": props.token } },
        body: { password, ...(code ? { code } : {}) },
      }));
      props.onDone(done.email);
    } catch (error) {
      errors.capture(error);
    } finally {
      setBusy(false);
    }
  }

  const confirmError = mismatch ? t("enrolment.mismatch") : errors.field("confirm");
  return (
    <>
      <dl class="facts">
        <dt>{t("enrolment.account")}</dt><dd>{view.email}</dd>
        <dt>{t("enrolment.name")}</dt><dd>{view.display_name}</dd>
        {view.role ? <><dt>{t("enrolment.role")}</dt><dd>{tDynamic("role", view.role)}</dd></> : null}
        {view.tenant_name ? <><dt>{t("enrolment.tenant")}</dt><dd>{view.tenant_name}</dd></> : null}
        <dt>{t("enrolment.expires")}</dt><dd>{formatDateTime(view.expires_at)}</dd>
      </dl>
      <p>{view.purpose === "reenrolment" ? t("enrolment.howReenrolment") : t("enrolment.howInvitation")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <form onSubmit={(event) => void submit(event)} noValidate>
        {view.second_factor ? <SecondFactor offer={view.second_factor} /> : null}
        <Field id="password" label={t("enrolment.password")} error={errors.field("password")}>
          <input id="password" name="password" type="password" autoComplete="new-password" required minLength={12}
                 aria-describedby={errors.field("password") ? "password-error" : "password-hint"}
                 {...(errors.field("password") ? { "aria-invalid": "true" } : {})} />
          <p class="hint" id="password-hint">{t("enrolment.passwordHint")}</p>
        </Field>
        <Field id="confirm" label={t("enrolment.confirm")} error={confirmError}>
          <input id="confirm" name="confirm" type="password" autoComplete="new-password" required
                 {...describedBy("confirm", confirmError)} />
        </Field>
        {view.second_factor ? (
          <Field id="code" label={t("enrolment.code")} error={errors.field("code")}>
            <input id="code" name="code" inputMode="numeric" autoComplete="one-time-code" required
                   {...describedBy("code", errors.field("code"))} />
          </Field>
        ) : null}
        <button type="submit" disabled={busy}>{t("enrolment.submit")}</button>
      </form>
    </>
  );
}

function SecondFactor(props: { offer: components["schemas"]["TotpEnrolment"] }) {
  return (
    <section class="second-factor" aria-labelledby="second-factor-title">
      <h2 id="second-factor-title">{t("enrolment.secondFactorTitle")}</h2>
      <p>{t("enrolment.secondFactorHow")}</p>
      <QrCode text={props.offer.provisioning_uri} label={t("enrolment.qrLabel")} />
      <p>
        {t("enrolment.secretManual")} : <code class="secret">{groupsOfFour(props.offer.secret)}</code>
      </p>
    </section>
  );
}

/** The QR code as SVG rectangles drawn by the page itself (no image fetched, nothing inline for the CSP to refuse). */
function QrCode(props: { text: string; label: string }) {
  const { data, size } = encode(props.text, { ecc: "M", border: 2 });
  const path = data.flatMap((row, y) => row.map((dark, x) => (dark ? `M${x} ${y}h1v1h-1z` : ""))).join("");
  return (
    <svg class="qr" role="img" aria-label={props.label} viewBox={`0 0 ${size} ${size}`} shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}

function groupsOfFour(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}
