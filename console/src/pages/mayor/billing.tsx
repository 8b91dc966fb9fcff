// The commune's contract, its invoices and credit notes (each Factur-X PDF downloadable) and its monthly report as
// PDF. Finance reads the same page for every member tenant; neither role sees any image here.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { currentSession } from "../../auth/session";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import { saveDocument } from "../../components/download";
import { currentMonth, euros, formatDay, percent } from "./format";

type Contract = components["schemas"]["Contract"];
type Invoice = components["schemas"]["InvoiceSummary"];

export function MayorBillingPage() {
  const session = currentSession();
  const [contracts, setContracts] = useState<Contract[]>([]);
  const [invoices, setInvoices] = useState<Invoice[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const listErrors = useFormErrors([]);

  async function loadInvoices(after: string | null): Promise<void> {
    const page = unwrap(await api.GET("/billing/invoices", { params: { query: { limit: 50, ...(after ? { cursor: after } : {}) } } }));
    setInvoices((previous) => (after ? [...previous, ...page.items] : page.items));
    setCursor(page.next_cursor);
  }

  useEffect(() => {
    void Promise.all([
      api.GET("/billing/contracts", { params: { query: { limit: 50 } } }).then(unwrap)
        .then((page) => setContracts(page.items)),
      loadInvoices(null),
    ]).then(() => setLoaded(true)).catch(listErrors.capture);
  }, []);

  const buyers = new Map(contracts.map((contract) => [contract.tenant_id, contract.buyer_name]));
  return (
    <section aria-labelledby="mayor-billing-title">
      <h1 id="mayor-billing-title">{t("mayor.billing.title")}</h1>
      {listErrors.form ? <p class="form-error" role="alert">{listErrors.form}</p> : null}
      <ReportForm tenants={session?.role === "tenant_admin" ? new Map([[session.tenantId, ""]]) : buyers}
                  fixedTenant={session?.role === "tenant_admin" ? session.tenantId : null} />
      <section aria-labelledby="mayor-contracts-title">
        <h2 id="mayor-contracts-title">{t("mayor.contracts.title")}</h2>
        {loaded && contracts.length === 0 ? <p>{t("mayor.contracts.none")}</p> : null}
        {contracts.length > 0 ? (
          <table class="data" id="mayor-contracts">
            <thead>
              <tr>
                <th scope="col">{t("mayor.contracts.reference")}</th>
                <th scope="col">{t("mayor.contracts.buyer")}</th>
                <th scope="col">{t("mayor.contracts.period")}</th>
                <th scope="col">{t("mayor.contracts.target")}</th>
                <th scope="col">{t("mayor.contracts.contact")}</th>
              </tr>
            </thead>
            <tbody>
              {contracts.map((contract) => (
                <tr key={contract.id}>
                  <th scope="row">{contract.reference}</th>
                  <td>{contract.buyer_name}</td>
                  <td>{contract.end_date
                    ? t("mayor.contracts.fromTo", { from: formatDay(contract.start_date), to: formatDay(contract.end_date) })
                    : t("mayor.contracts.from", { from: formatDay(contract.start_date) })}</td>
                  <td>{percent(contract.availability_target)}</td>
                  <td>{contract.billing_contact_name} ({contract.billing_contact_email})</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
      <section aria-labelledby="mayor-invoices-title">
        <h2 id="mayor-invoices-title">{t("mayor.invoices.title")}</h2>
        {loaded && invoices.length === 0 ? <p>{t("mayor.invoices.none")}</p> : null}
        {invoices.length > 0 ? <InvoiceTable invoices={invoices} buyers={buyers} /> : null}
        {cursor ? (
          <button type="button" class="secondary" onClick={() => void loadInvoices(cursor).catch(listErrors.capture)}>
            {t("mayor.invoices.more")}
          </button>
        ) : null}
      </section>
    </section>
  );
}

function InvoiceTable({ invoices, buyers }: { invoices: Invoice[]; buyers: Map<string, string> }) {
  const errors = useFormErrors([]);
  async function download(invoice: Invoice): Promise<void> {
    errors.clear();
    try {
      const blob = unwrap(await api.GET("/billing/invoices/{invoice_id}/document", {
        params: { path: { invoice_id: invoice.id } }, parseAs: "blob" })) as Blob;
      saveDocument(blob, `${invoice.number}.pdf`);
    } catch (error) {
      errors.capture(error);
    }
  }
  return (
    <>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <table class="data" id="mayor-invoices">
        <thead>
          <tr>
            <th scope="col">{t("mayor.invoices.number")}</th>
            <th scope="col">{t("mayor.contracts.buyer")}</th>
            <th scope="col">{t("mayor.invoices.kind")}</th>
            <th scope="col">{t("mayor.invoices.period")}</th>
            <th scope="col">{t("mayor.invoices.issued")}</th>
            <th scope="col">{t("mayor.invoices.due")}</th>
            <th scope="col">{t("mayor.invoices.ht")}</th>
            <th scope="col">{t("mayor.invoices.ttc")}</th>
            <th scope="col">{t("mayor.invoices.status")}</th>
            <th scope="col">{t("mayor.invoices.document")}</th>
          </tr>
        </thead>
        <tbody>
          {invoices.map((invoice) => (
            <tr key={invoice.id}>
              <th scope="row">{invoice.number}</th>
              <td>{buyers.get(invoice.tenant_id) ?? ""}</td>
              <td>{tDynamic("mayor.kind", invoice.kind)}</td>
              <td>{t("mayor.contracts.fromTo", { from: formatDay(invoice.period_start), to: formatDay(invoice.period_end) })}</td>
              <td>{formatDay(invoice.issue_date)}</td>
              <td>{invoice.due_date ? formatDay(invoice.due_date) : ""}</td>
              <td>{euros(invoice.total_ht)}</td>
              <td>{euros(invoice.total_ttc)}</td>
              <td>{tDynamic("mayor.status", invoice.status)}</td>
              <td>
                <button type="button" class="secondary" onClick={() => void download(invoice)}>
                  {t("mayor.invoices.download", { number: invoice.number })}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function ReportForm({ tenants, fixedTenant }: { tenants: Map<string, string>; fixedTenant: string | null }) {
  const [month, setMonth] = useState(currentMonth());
  const [tenant, setTenant] = useState(fixedTenant ?? "");
  const [done, setDone] = useState<string | null>(null);
  const errors = useFormErrors(["month", "tenant_id"]);
  const chosen = fixedTenant ?? (tenant || ([...tenants.keys()][0] ?? ""));

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    setDone(null);
    try {
      const blob = unwrap(await api.GET("/billing/reports/{tenant_id}/document", {
        params: { path: { tenant_id: chosen }, query: { month } }, parseAs: "blob" })) as Blob;
      saveDocument(blob, `rapport-${month}.pdf`);
      setDone(month);
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <form class="inline-form" aria-labelledby="mayor-report-title" onSubmit={(event) => void submit(event)} noValidate>
      <h2 id="mayor-report-title">{t("mayor.report.title")}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="toolbar">
        {fixedTenant ? null : (
          <Field id="mayor-report-tenant" label={t("mayor.report.tenant")} error={errors.field("tenant_id")}>
            <select id="mayor-report-tenant" value={chosen} {...describedBy("mayor-report-tenant", errors.field("tenant_id"))}
                    onChange={(event) => setTenant((event.currentTarget as HTMLSelectElement).value)}>
              {[...tenants.entries()].map(([id, name]) => <option key={id} value={id}>{name}</option>)}
            </select>
          </Field>
        )}
        <Field id="mayor-report-month" label={t("mayor.month")} error={errors.field("month")}>
          <input id="mayor-report-month" type="month" value={month} {...describedBy("mayor-report-month", errors.field("month"))}
                 onInput={(event) => setMonth((event.currentTarget as HTMLInputElement).value)} />
        </Field>
        <button type="submit" disabled={!chosen}>{t("mayor.report.download")}</button>
      </div>
      {done ? <p role="status">{t("mayor.report.downloaded", { month: done })}</p> : null}
    </form>
  );
}
