// The journal's integrity: each chain in scope verified by the API (its newest lines recomputed and linked, the
// newest signed anchor compared), and that anchor: when, its hash, where it lies in the object-locked store.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";

type Verification = components["schemas"]["JournalVerification"];
type Chain = components["schemas"]["ChainStatus"];

function anchorCell(chain: Chain): string {
  if (chain.anchored_position === null || chain.anchored_position === undefined) {
    return t("auditor.verification.anchorNone");
  }
  const key = chain.anchor_matches === false ? "auditor.verification.anchorMismatch" : "auditor.verification.anchorMatch";
  return t(key, { position: chain.anchored_position });
}

export function AuditVerificationPage() {
  const [report, setReport] = useState<Verification | null>(null);
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors([]);

  async function verify(): Promise<void> {
    setBusy(true);
    errors.clear();
    try {
      setReport(unwrap(await api.GET("/journal/verification")));
    } catch (error) {
      errors.capture(error);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    void verify();
  }, []);

  const anchor = report?.last_anchor;
  return (
    <section aria-labelledby="audit-verification-title" aria-busy={busy ? "true" : "false"}>
      <h1 id="audit-verification-title">{t("auditor.verification.title")}</h1>
      <p>{t("auditor.verification.intro")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {report ? (
        <>
          <p class={`chain-status chain-${report.status}`} data-testid="journal-status">
            {t("auditor.verification.status")} : <strong>{t(`auditor.verification.${report.status}`)}</strong>
            {" — "}
            {t("auditor.verification.verifiedAt", { when: formatDateTime(report.verified_at) })}
          </p>
          <h2>{t("auditor.verification.anchor")}</h2>
          {anchor ? (
            <dl class="facts" data-testid="last-anchor">
              <dt>{t("auditor.verification.anchoredAt")}</dt>
              <dd>{formatDateTime(anchor.anchored_at)}</dd>
              <dt>{t("auditor.verification.anchorHash")}</dt>
              <dd><code>{anchor.payload_sha256}</code></dd>
              <dt>{t("auditor.verification.anchorWhere")}</dt>
              <dd>{t("auditor.verification.anchorWhereValue", {
                store: anchor.store, space: anchor.space, key: anchor.object_key, version: anchor.version_id,
              })}</dd>
              <dt>{t("auditor.verification.anchorKey")}</dt>
              <dd><code>{anchor.key_id}</code></dd>
              <dt>{t("auditor.verification.anchorChains")}</dt>
              <dd>{anchor.chains}</dd>
            </dl>
          ) : (
            <p data-testid="last-anchor">{t("auditor.verification.noAnchor")}</p>
          )}
          {report.anchor_problems.length > 0 ? (
            <>
              <h3>{t("auditor.verification.anchorProblems")}</h3>
              <ul>{report.anchor_problems.map((problem) => <li key={problem}>{problem}</li>)}</ul>
            </>
          ) : null}
          <h2>{t("auditor.verification.chains")}</h2>
          <table class="data" data-testid="chains">
            <thead>
              <tr>
                <th scope="col">{t("auditor.verification.commune")}</th>
                <th scope="col">{t("auditor.verification.state")}</th>
                <th scope="col">{t("auditor.verification.span")}</th>
                <th scope="col">{t("auditor.verification.anchorColumn")}</th>
                <th scope="col">{t("auditor.verification.problems")}</th>
              </tr>
            </thead>
            <tbody>
              {report.chains.map((chain) => (
                <tr key={chain.tenant_id}>
                  <th scope="row">{chain.tenant_name}</th>
                  <td class={`chain-${chain.status}`}>{t(`auditor.verification.${chain.status}`)}</td>
                  <td>
                    {t("auditor.verification.spanValue", { from: chain.verified_from, to: chain.verified_to })}
                    {chain.complete ? "" : ` ${t("auditor.verification.partial")}`}
                  </td>
                  <td>{anchorCell(chain)}</td>
                  <td>
                    {chain.first_broken_position ? (
                      <>
                        <strong>{t("auditor.verification.firstBroken", { position: chain.first_broken_position })}</strong>
                        <ul>
                          {chain.problems.map((problem) => (
                            <li key={`${problem.position}-${problem.kind ?? ""}`}>
                              {t("auditor.verification.problemAt", {
                                position: problem.position, problem: tDynamic("auditor.problem", problem.kind ?? "other"),
                              })}
                            </li>
                          ))}
                        </ul>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      <button type="button" onClick={() => void verify()} disabled={busy}>{t("auditor.verification.again")}</button>
    </section>
  );
}
