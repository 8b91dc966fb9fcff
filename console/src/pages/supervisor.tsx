// The supervisor's view: claim and acknowledgement SLA breaches, each operator's load, precision per rule.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useFormErrors } from "../components/use-problem";
import { formatDuration, formatTime } from "../format";
import { t, tDynamic } from "../i18n/fr";

type Breach = components["schemas"]["SlaBreach"];
type PrecisionRow = components["schemas"]["PrecisionRow"];
type Alert = components["schemas"]["Alert"];

/** Open alerts per operator holding them, most loaded first. */
export function operatorLoad(alerts: readonly Alert[]): [string, number][] {
  const load = new Map<string, number>();
  for (const alert of alerts) {
    if (alert.claimed_by) load.set(alert.claimed_by, (load.get(alert.claimed_by) ?? 0) + 1);
  }
  return [...load.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export function SupervisorPage() {
  const [breaches, setBreaches] = useState<Breach[]>([]);
  const [precision, setPrecision] = useState<PrecisionRow[]>([]);
  const [load, setLoad] = useState<[string, number][]>([]);
  const errors = useFormErrors([]);

  async function refresh(): Promise<void> {
    const [breachRows, precisionRows, open] = await Promise.all([
      api.GET("/alerts/sla-breaches").then(unwrap),
      api.GET("/alerts/precision", { params: { query: { group_by: "rule", days: 30 } } }).then(unwrap),
      api.GET("/alerts", { params: { query: { states: ["claimed", "verified", "dispatched"], limit: 200 } } }).then(unwrap),
    ]);
    setBreaches(breachRows);
    setPrecision(precisionRows);
    setLoad(operatorLoad(open.items));
    errors.clear();
  }

  useEffect(() => {
    void refresh().catch(errors.capture);
    const timer = setInterval(() => void refresh().catch(errors.capture), 15_000);
    return () => clearInterval(timer);
  }, []);

  return (
    <section aria-labelledby="supervisor-title">
      <h1 id="supervisor-title">{t("supervisor.title")}</h1>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <h2>{t("supervisor.breaches")}</h2>
      {breaches.length === 0 ? (
        <p>{t("supervisor.noBreaches")}</p>
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th scope="col">{t("supervisor.alert")}</th>
              <th scope="col">{t("supervisor.kind")}</th>
              <th scope="col">{t("supervisor.overdue")}</th>
            </tr>
          </thead>
          <tbody>
            {breaches.map((breach) => (
              <tr key={`${breach.alert_id}-${breach.kind}`}>
                <td>{breach.rule_type} — {formatTime(breach.raised_at)}</td>
                <td>{tDynamic("supervisor.breach", breach.kind)}</td>
                <td>{formatDuration(breach.overdue_s)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{t("supervisor.load")}</h2>
      {load.length === 0 ? (
        <p>{t("supervisor.noLoad")}</p>
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th scope="col">{t("supervisor.operator")}</th>
              <th scope="col">{t("supervisor.openClaims")}</th>
            </tr>
          </thead>
          <tbody>
            {load.map(([operator, count]) => (
              <tr key={operator}>
                <td>{operator}</td>
                <td>{count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{t("supervisor.precision")}</h2>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">{t("supervisor.rule")}</th>
            <th scope="col">{t("supervisor.tp")}</th>
            <th scope="col">{t("supervisor.fp")}</th>
            <th scope="col">{t("supervisor.unjudged")}</th>
            <th scope="col">{t("supervisor.ratio")}</th>
          </tr>
        </thead>
        <tbody>
          {precision.map((row) => (
            <tr key={row.key}>
              <td>{row.key}</td>
              <td>{row.true_positives}</td>
              <td>{row.false_positives}</td>
              <td>{row.unjudged}</td>
              <td>{row.precision === null ? "—" : `${Math.round(row.precision * 100)} %`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
