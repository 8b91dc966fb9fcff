// The commune's dashboard for a month: its cameras' health and availability (measured from recorded health), the
// alerts and what came of them (numbers, times, outcomes and a day-by-day timeline). It shows no image at all.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { currentSession } from "../../auth/session";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime, formatDuration } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { currentMonth, formatDay, percent } from "./format";
import "./mayor.css";

type Dashboard = components["schemas"]["CommuneDashboard"];
type Report = components["schemas"]["MonthlyReport"];
type Figures = components["schemas"]["Figures"];
type DayCount = components["schemas"]["DayCount"];

const OUTCOMES = ["arrest_in_flagrante_delicto", "people_found", "nobody_found", "false_alarm"];

export function MayorDashboardPage() {
  const tenantId = currentSession()?.tenantId ?? "";
  const [month, setMonth] = useState(currentMonth());
  const [dashboard, setDashboard] = useState<Dashboard | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const errors = useFormErrors(["month"]);

  useEffect(() => {
    let active = true;
    errors.clear();
    const path = { tenant_id: tenantId };
    const query = { month };
    void Promise.all([
      api.GET("/tenants/{tenant_id}/dashboard", { params: { path, query } }).then(unwrap),
      api.GET("/billing/reports/{tenant_id}", { params: { path, query } }).then(unwrap),
    ]).then(([cameras, figures]) => {
      if (!active) return;
      setDashboard(cameras);
      setReport(figures);
    }).catch((error: unknown) => {
      if (active) errors.capture(error);
    });
    return () => {
      active = false;
    };
  }, [month]);

  const totals = report?.totals;
  const openTickets = dashboard?.cameras.reduce((sum, camera) => sum + camera.open_tickets, 0) ?? 0;
  return (
    <section aria-labelledby="mayor-dashboard-title">
      <h1 id="mayor-dashboard-title">
        {dashboard ? t("mayor.dashboard.title", { tenant: dashboard.tenant_name }) : t("mayor.dashboard.titleLoading")}
      </h1>
      <div class="toolbar">
        <Field id="mayor-month" label={t("mayor.month")} error={errors.field("month")}>
          <input id="mayor-month" type="month" value={month} required {...describedBy("mayor-month", errors.field("month"))}
                 onChange={(event) => {
                   const value = (event.currentTarget as HTMLInputElement).value;
                   if (value) setMonth(value);
                 }} />
        </Field>
        {dashboard ? <p>{t("mayor.period", { from: formatDay(dashboard.first_day), to: formatDay(dashboard.last_day) })}</p> : null}
      </div>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <p class="hint">{t("mayor.noImages")}</p>
      {!dashboard || !report ? <p aria-busy="true">{t("mayor.loading")}</p> : (
        <>
          <dl class="kpis">
            <div><dt>{t("mayor.kpi.availability")}</dt><dd>{percent(dashboard.availability)}</dd></div>
            <div><dt>{t("mayor.kpi.cameras")}</dt><dd>{dashboard.cameras.length}</dd></div>
            <div><dt>{t("mayor.kpi.tickets")}</dt><dd>{openTickets}</dd></div>
            <div><dt>{t("mayor.kpi.alerts")}</dt><dd>{totals?.alerts_raised ?? 0}</dd></div>
            <div><dt>{t("mayor.kpi.interventions")}</dt><dd>{totals?.alerts_dispatched ?? 0}</dd></div>
          </dl>
          <CameraTable dashboard={dashboard} />
          {totals ? <AlertFigures figures={totals} /> : null}
          <Timeline days={report.daily} />
        </>
      )}
    </section>
  );
}

function CameraTable({ dashboard }: { dashboard: Dashboard }) {
  return (
    <section aria-labelledby="mayor-cameras-title">
      <h2 id="mayor-cameras-title">{t("mayor.cameras.title")}</h2>
      {dashboard.cameras.length === 0 ? <p>{t("mayor.cameras.empty")}</p> : (
        <table class="data" id="mayor-cameras">
          <caption>{t("mayor.cameras.caption")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("mayor.cameras.name")}</th>
              <th scope="col">{t("mayor.cameras.site")}</th>
              <th scope="col">{t("mayor.cameras.state")}</th>
              <th scope="col">{t("mayor.cameras.since")}</th>
              <th scope="col">{t("mayor.cameras.availability")}</th>
              <th scope="col">{t("mayor.cameras.observed")}</th>
              <th scope="col">{t("mayor.cameras.down")}</th>
              <th scope="col">{t("mayor.cameras.tickets")}</th>
            </tr>
          </thead>
          <tbody>
            {dashboard.cameras.map((camera) => (
              <tr key={camera.camera_id} data-camera-id={camera.camera_id}>
                <th scope="row">{camera.name}</th>
                <td>{camera.site_name}</td>
                <td><span class={`badge health-${camera.health_state ?? "unknown"}`}>
                  {tDynamic("mayor.health", camera.health_state ?? "unknown")}</span></td>
                <td>{camera.health_since ? formatDateTime(camera.health_since) : t("mayor.times.none")}</td>
                <td>{percent(camera.availability)}</td>
                <td>{formatDuration(camera.observed_s)}</td>
                <td>{formatDuration(camera.observed_s - camera.available_s)}</td>
                <td>{camera.open_tickets}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function seconds(value: number | null | undefined): string {
  return value === null || value === undefined ? t("mayor.times.none") : formatDuration(value);
}

function AlertFigures({ figures }: { figures: Figures }) {
  const outcomes = Object.entries(figures.outcomes).sort(
    ([a], [b]) => (OUTCOMES.indexOf(a) + 99) % 99 - (OUTCOMES.indexOf(b) + 99) % 99);
  return (
    <section aria-labelledby="mayor-alerts-title">
      <h2 id="mayor-alerts-title">{t("mayor.alerts.title")}</h2>
      <dl class="kpis" id="mayor-alert-figures">
        <div><dt>{t("mayor.alerts.raised")}</dt><dd>{figures.alerts_raised}</dd></div>
        <div><dt>{t("mayor.alerts.verified")}</dt><dd>{figures.alerts_verified}</dd></div>
        <div><dt>{t("mayor.alerts.dismissed")}</dt><dd>{figures.alerts_dismissed}</dd></div>
        <div><dt>{t("mayor.alerts.dispatched")}</dt><dd>{figures.alerts_dispatched}</dd></div>
        <div><dt>{t("mayor.alerts.arrivals")}</dt><dd>{figures.arrivals}</dd></div>
        <div><dt>{t("mayor.alerts.requisitions")}</dt>
          <dd>{t("mayor.alerts.requisitionsValue", { received: figures.requisitions_received,
                                                     served: figures.requisitions_served })}</dd></div>
      </dl>
      <div class="mayor-columns">
        <table class="data">
          <caption>{t("mayor.times.title")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("mayor.times.what")}</th>
              <th scope="col">{t("mayor.times.median")}</th>
              <th scope="col">{t("mayor.times.p90")}</th>
            </tr>
          </thead>
          <tbody>
            <tr><th scope="row">{t("mayor.times.verify")}</th>
              <td>{seconds(figures.verification_median_s)}</td><td>{seconds(figures.verification_p90_s)}</td></tr>
            <tr><th scope="row">{t("mayor.times.dispatch")}</th>
              <td>{seconds(figures.dispatch_median_s)}</td><td>{seconds(figures.dispatch_p90_s)}</td></tr>
            <tr><th scope="row">{t("mayor.times.arrival")}</th>
              <td>{seconds(figures.arrival_median_s)}</td><td>{seconds(figures.arrival_p90_s)}</td></tr>
          </tbody>
        </table>
        <section aria-labelledby="mayor-outcomes-title">
          <h3 id="mayor-outcomes-title">{t("mayor.outcomes.title")}</h3>
          {outcomes.length === 0 ? <p>{t("mayor.outcomes.none")}</p> : (
            <table class="data">
              <thead>
                <tr><th scope="col">{t("mayor.outcomes.what")}</th><th scope="col">{t("mayor.outcomes.count")}</th></tr>
              </thead>
              <tbody>
                {outcomes.map(([outcome, count]) => (
                  <tr key={outcome}><th scope="row">{tDynamic("mayor.outcome", outcome)}</th><td>{count}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </section>
  );
}

const CHART_HEIGHT = 120;
const BAR_WIDTH = 28;

function Timeline({ days }: { days: DayCount[] }) {
  const peak = Math.max(1, ...days.map((day) => day.raised));
  const raised = days.reduce((sum, day) => sum + day.raised, 0);
  const dispatched = days.reduce((sum, day) => sum + day.dispatched, 0);
  const scale = (count: number): number => Math.round((count / peak) * CHART_HEIGHT);
  return (
    <section aria-labelledby="mayor-timeline-title">
      <h2 id="mayor-timeline-title">{t("mayor.timeline.title")}</h2>
      <svg class="mayor-timeline" role="img" viewBox={`0 0 ${days.length * BAR_WIDTH} ${CHART_HEIGHT + 16}`}
           aria-label={t("mayor.timeline.label", { raised, dispatched })}>
        {days.map((day, index) => (
          <g key={day.day}>
            <title>{t("mayor.timeline.day", { day: formatDay(day.day), raised: day.raised, verified: day.verified,
                                               dispatched: day.dispatched })}</title>
            <rect class="bar-raised" x={index * BAR_WIDTH + 2} width={BAR_WIDTH - 4}
                  y={CHART_HEIGHT - scale(day.raised)} height={scale(day.raised)} />
            <rect class="bar-dispatched" x={index * BAR_WIDTH + 4} width={BAR_WIDTH - 8}
                  y={CHART_HEIGHT - scale(day.dispatched)} height={scale(day.dispatched)} />
            {index % 5 === 0 ? <text x={index * BAR_WIDTH + BAR_WIDTH / 2} y={CHART_HEIGHT + 12}
                                     text-anchor="middle">{day.day.slice(8)}</text> : null}
          </g>
        ))}
      </svg>
      <p class="legend">
        <span class="swatch swatch-raised" aria-hidden="true" /> {t("mayor.timeline.legendRaised")}{" "}
        <span class="swatch swatch-dispatched" aria-hidden="true" /> {t("mayor.timeline.legendDispatched")}
      </p>
    </section>
  );
}
