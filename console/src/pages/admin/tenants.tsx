// Tenants: each commune's subscription, live supervision, municipal police opt-in and retention (30 days at most,
// CSI L252-5, the API's refusal shown next to the field), with its contract and the plan of each of its cameras.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import { ApiProblem } from "../../api/problem";
import { Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import {
  type Camera, type CameraPlan, type Contract, formatDate, isDepartmentAdmin, loadCameras, loadContracts,
  loadTenants, type Plan, type Tenant,
} from "./data";
import "./admin.css";

const SUBSCRIPTIONS = ["trial", "active", "suspended", "terminated"] as const;
type Subscription = (typeof SUBSCRIPTIONS)[number];
const FIELDS = ["subscription_status", "live_supervision", "municipal_police_opt_in", "retention_days"] as const;

export function TenantsPage() {
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const errors = useFormErrors([]);

  const reload = async (): Promise<void> => {
    try {
      setTenants(await loadTenants());
    } catch (error) {
      errors.capture(error);
    }
  };
  useEffect(() => void reload(), []);

  const tenant = tenants.find((candidate) => candidate.id === selected) ?? null;
  return (
    <section aria-labelledby="tenants-title">
      <h1 id="tenants-title">{t("admin.tenants.title")}</h1>
      <p>{t("admin.tenants.intro")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <table class="data" id="tenants-table">
        <thead>
          <tr>
            <th scope="col">{t("admin.tenants.name")}</th>
            <th scope="col">{t("admin.tenants.kind")}</th>
            <th scope="col">{t("admin.tenants.insee")}</th>
            <th scope="col">{t("admin.tenants.subscription")}</th>
            <th scope="col">{t("admin.tenants.liveSupervision")}</th>
            <th scope="col">{t("admin.tenants.policeOptIn")}</th>
            <th scope="col">{t("admin.tenants.retention")}</th>
            <th scope="col">{t("admin.tenants.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {tenants.map((row) => (
            <tr key={row.id} data-tenant-id={row.id} aria-current={row.id === selected ? "true" : undefined}>
              <th scope="row">{row.name}</th>
              <td>{tDynamic("admin.kind", row.kind)}</td>
              <td>{row.insee_code ?? t("admin.none")}</td>
              <td>{tDynamic("admin.subscription", row.subscription_status)}</td>
              <td>{row.live_supervision ? t("admin.yes") : t("admin.no")}</td>
              <td>{row.municipal_police_opt_in ? t("admin.yes") : t("admin.no")}</td>
              <td>{row.retention_days}</td>
              <td>
                <button type="button" class="secondary" onClick={() => setSelected(row.id)}
                        aria-label={t("admin.tenants.editTitle", { name: row.name })}>
                  {t("admin.edit")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tenant ? (
        <>
          <TenantForm key={tenant.id} tenant={tenant} onSaved={(saved) =>
            setTenants((list) => list.map((row) => (row.id === saved.id ? saved : row)))} />
          <TenantContract tenant={tenant} />
        </>
      ) : null}
    </section>
  );
}

function TenantForm(props: { tenant: Tenant; onSaved: (tenant: Tenant) => void }) {
  const { tenant } = props;
  const department = isDepartmentAdmin();
  const [subscription, setSubscription] = useState<Subscription>(tenant.subscription_status as Subscription);
  const [live, setLive] = useState(tenant.live_supervision);
  const [police, setPolice] = useState(tenant.municipal_police_opt_in);
  const [retention, setRetention] = useState(String(tenant.retention_days));
  const [saved, setSaved] = useState(false);
  const [legalReference, setLegalReference] = useState<string | null>(null);
  const errors = useFormErrors(FIELDS);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    setSaved(false);
    setLegalReference(null);
    try {
      const body = {
        ...(department ? { subscription_status: subscription, live_supervision: live } : {}),
        municipal_police_opt_in: police,
        retention_days: Number(retention),
      };
      const updated = unwrap(await api.PATCH("/tenants/{tenant_id}", {
        params: { path: { tenant_id: tenant.id } }, body,
      }));
      errors.clear();
      setSaved(true);
      props.onSaved(updated);
    } catch (error) {
      errors.capture(error);
      const reference = error instanceof ApiProblem ? (error.problem as { reference?: unknown }).reference : null;
      if (typeof reference === "string" && error instanceof ApiProblem && error.problem.field === "retention_days") {
        setLegalReference(reference);
      }
    }
  }

  const retentionError = legalReference
    ? t("admin.tenants.retentionLaw", { reference: legalReference, detail: errors.field("retention_days") ?? "" })
    : errors.field("retention_days");
  const retentionDescription = ["retention-help", ...(retentionError ? ["tenant-retention-error"] : [])].join(" ");
  return (
    <form class="inline-form" aria-labelledby="tenant-form-title" onSubmit={(e) => void submit(e)} noValidate>
      <h2 id="tenant-form-title">{t("admin.tenants.editTitle", { name: tenant.name })}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {department ? null : <p>{t("admin.tenants.departmentOnly")}</p>}
      <Field id="tenant-subscription" label={t("admin.tenants.subscription")}
             error={errors.field("subscription_status")}>
        <select id="tenant-subscription" value={subscription} disabled={!department}
                onChange={(e) => setSubscription((e.currentTarget as HTMLSelectElement).value as Subscription)}>
          {SUBSCRIPTIONS.map((value) => <option key={value} value={value}>{tDynamic("admin.subscription", value)}</option>)}
        </select>
      </Field>
      <div class="check">
        <input id="tenant-live" type="checkbox" checked={live} disabled={!department}
               onChange={(e) => setLive((e.currentTarget as HTMLInputElement).checked)} />
        <label for="tenant-live">{t("admin.tenants.liveSupervision")}</label>
      </div>
      <div class="check">
        <input id="tenant-police" type="checkbox" checked={police}
               onChange={(e) => setPolice((e.currentTarget as HTMLInputElement).checked)} />
        <label for="tenant-police">{t("admin.tenants.policeOptIn")}</label>
      </div>
      <Field id="tenant-retention" label={t("admin.tenants.retention")} error={retentionError}>
        <input id="tenant-retention" name="retention_days" type="number" min={1} inputMode="numeric"
               value={retention} onInput={(e) => setRetention((e.currentTarget as HTMLInputElement).value)}
               aria-describedby={retentionDescription} aria-invalid={retentionError ? "true" : undefined} />
      </Field>
      <p id="retention-help" class="help">{t("admin.tenants.retentionHelp")}</p>
      <div class="actions">
        <button type="submit">{t("admin.save")}</button>
        {saved ? <span role="status">{t("admin.saved")}</span> : null}
      </div>
    </form>
  );
}

function TenantContract(props: { tenant: Tenant }) {
  const [contracts, setContracts] = useState<Contract[] | null>(null);
  const [plans, setPlans] = useState<Plan[]>([]);
  const [cameraPlans, setCameraPlans] = useState<CameraPlan[]>([]);
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [refused, setRefused] = useState(false);

  useEffect(() => {
    let active = true;
    void (async () => {
      try {
        const [found, catalogue, all] = await Promise.all([
          loadContracts(props.tenant.id), api.GET("/billing/plans").then(unwrap), loadCameras(),
        ]);
        const today = new Date().toISOString().slice(0, 10);
        const current = found.find((c) => c.start_date <= today && (!c.end_date || c.end_date >= today)) ?? found.at(-1);
        const planned = current ? unwrap(await api.GET("/billing/contracts/{contract_id}/cameras", {
          params: { path: { contract_id: current.id } },
        })) : [];
        if (!active) return;
        setContracts(found);
        setPlans(catalogue);
        setCameras(all.filter((camera) => camera.tenant_id === props.tenant.id));
        setCameraPlans(planned);
      } catch (error) {
        if (active && error instanceof ApiProblem && error.status === 403) setRefused(true);
        else if (active) setContracts([]);
      }
    })();
    return () => {
      active = false;
    };
  }, [props.tenant.id]);

  if (refused) return <p>{t("admin.tenants.billingUnavailable")}</p>;
  if (contracts === null) return <p aria-busy="true">{t("admin.loading")}</p>;
  const today = new Date().toISOString().slice(0, 10);
  const contract = contracts.find((c) => c.start_date <= today && (!c.end_date || c.end_date >= today)) ?? contracts.at(-1);
  const planOf = (camera: { id: string }): CameraPlan | undefined => cameraPlans.find((row) =>
    row.camera_id === camera.id && row.start_date <= today && (!row.end_date || row.end_date > today));
  // A commune the centre does not supervise is billed all the same, but its cameras are outside the admin's scope:
  // its plan rows are listed by camera number.
  const unseen = [...new Set(cameraPlans.map((row) => row.camera_id))]
    .filter((id) => !cameras.some((camera) => camera.id === id))
    .map((id) => ({ id, name: t("admin.tenants.cameraOutOfScope", { id: id.slice(0, 8) }) }));
  return (
    <section class="inline-form" aria-labelledby="contract-title">
      <h2 id="contract-title">{t("admin.tenants.contract")}</h2>
      {contract ? (
        <p id="contract-line">{t("admin.tenants.contractLine", {
          reference: contract.reference, from: formatDate(contract.start_date),
          until: contract.end_date ? t("admin.tenants.until", { date: formatDate(contract.end_date) })
                                   : t("admin.tenants.openEnded"),
          target: String(contract.availability_target),
        })}</p>
      ) : <p>{t("admin.tenants.noContract")}</p>}
      <h3>{t("admin.tenants.cameraPlans")}</h3>
      <table class="data" id="camera-plans">
        <thead>
          <tr>
            <th scope="col">{t("admin.tenants.camera")}</th>
            <th scope="col">{t("admin.tenants.plan")}</th>
            <th scope="col">{t("admin.tenants.planFrom")}</th>
            <th scope="col">{t("admin.tenants.planUntil")}</th>
          </tr>
        </thead>
        <tbody>
          {[...cameras, ...unseen].map((camera) => {
            const row = planOf(camera);
            const plan = row ? plans.find((candidate) => candidate.id === row.plan_id) : undefined;
            const price = [...(plan?.prices ?? [])].sort((a, b) => a.effective_from.localeCompare(b.effective_from))
              .filter((p) => p.effective_from <= today).at(-1);
            return (
              <tr key={camera.id} data-camera-id={camera.id}>
                <th scope="row">{camera.name}</th>
                <td>{row ? (plan && price ? t("admin.tenants.planPrice", { name: plan.name,
                                                                           price: String(price.monthly_price_ht) })
                                          : row.plan_code)
                         : t("admin.tenants.notBilled")}</td>
                <td>{row ? formatDate(row.start_date) : t("admin.none")}</td>
                <td>{row?.end_date ? formatDate(row.end_date) : t("admin.none")}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
