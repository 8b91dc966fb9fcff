// The registers: recordings destroyed, judicial requisitions, exports and their transmission to the prosecutor,
// over a period, paginated, and the same as CSV.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { periodQuery, saveCsv } from "./csv";

type Kind = "destructions" | "requisitions" | "exports" | "transmissions";
type Destruction = components["schemas"]["DestructionRow"];
type Requisition = components["schemas"]["RequisitionRow"];
type Export = components["schemas"]["ExportRow"];
type Row = Destruction | Requisition | Export;

const KINDS: Kind[] = ["requisitions", "exports", "transmissions", "destructions"];

async function fetchPage(kind: Kind, query: { since?: string; until?: string; limit: number; cursor?: string }) {
  switch (kind) {
    case "destructions":
      return unwrap(await api.GET("/registers/destructions", { params: { query } }));
    case "requisitions":
      return unwrap(await api.GET("/registers/requisitions", { params: { query } }));
    case "exports":
      return unwrap(await api.GET("/registers/exports", { params: { query } }));
    case "transmissions":
      return unwrap(await api.GET("/registers/transmissions", { params: { query } }));
  }
}

async function fetchCsv(kind: Kind, query: { since?: string; until?: string }) {
  switch (kind) {
    case "destructions":
      return api.GET("/registers/destructions/csv", { params: { query }, parseAs: "blob" });
    case "requisitions":
      return api.GET("/registers/requisitions/csv", { params: { query }, parseAs: "blob" });
    case "exports":
      return api.GET("/registers/exports/csv", { params: { query }, parseAs: "blob" });
    case "transmissions":
      return api.GET("/registers/transmissions/csv", { params: { query }, parseAs: "blob" });
  }
}

const span = (from: string, to: string) =>
  t("auditor.registers.periodValue", { from: formatDateTime(from), to: formatDateTime(to) });

function Header(props: { kind: Kind }) {
  const columns: Record<Kind, string[]> = {
    destructions: ["destroyedAt", "commune", "camera", "recording", "period", "retention", "method"],
    requisitions: ["registeredAt", "commune", "procedure", "legalFrame", "opj", "cameras", "period", "holds",
                   "released"],
    exports: ["exportedAt", "commune", "procedure", "exportedBy", "package", "transmittedAt", "recipient"],
    transmissions: ["transmittedAt", "commune", "procedure", "recipient", "exportedAt", "exportedBy", "package"],
  };
  return (
    <thead>
      <tr>{columns[props.kind].map((name) => <th key={name} scope="col">{tDynamic("auditor.registers", name)}</th>)}</tr>
    </thead>
  );
}

function Cells(props: { kind: Kind; row: Row }) {
  const { kind, row } = props;
  if (kind === "destructions") {
    const d = row as Destruction;
    return (
      <>
        <td>{formatDateTime(d.destroyed_at)}</td><td>{d.tenant_name}</td><td>{d.camera_name ?? d.camera_id}</td>
        <td>{tDynamic("recording", d.recording_type)}</td><td>{span(d.start_at, d.end_at)}</td>
        <td>{t("auditor.registers.retentionValue", { days: d.retention_days })}</td>
        <td>{tDynamic("method", d.method)}</td>
      </>
    );
  }
  if (kind === "requisitions") {
    const r = row as Requisition;
    return (
      <>
        <td>{formatDateTime(r.registered_at)}</td><td>{r.tenant_name}</td><td>{r.procedure_number}</td>
        <td>{tDynamic("legal", r.legal_frame)}</td><td>{r.opj_name} — {r.opj_service}</td>
        <td>{r.camera_names.join(", ")}</td><td>{span(r.start_at, r.end_at)}</td><td>{r.holds}</td>
        <td>{r.released_at ? formatDateTime(r.released_at) : t("auditor.registers.notReleased")}</td>
      </>
    );
  }
  const e = row as Export;
  const transmitted = e.transmitted_at ? formatDateTime(e.transmitted_at) : t("auditor.registers.notTransmitted");
  if (kind === "transmissions") {
    return (
      <>
        <td>{transmitted}</td><td>{e.tenant_name}</td><td>{e.procedure_number}</td><td>{e.recipient ?? ""}</td>
        <td>{formatDateTime(e.exported_at)}</td><td>{e.exported_by_name}</td><td><code>{e.package_sha256}</code></td>
      </>
    );
  }
  return (
    <>
      <td>{formatDateTime(e.exported_at)}</td><td>{e.tenant_name}</td><td>{e.procedure_number}</td>
      <td>{e.exported_by_name}</td><td><code>{e.package_sha256}</code></td><td>{transmitted}</td>
      <td>{e.recipient ?? ""}</td>
    </>
  );
}

export function AuditRegistersPage() {
  const [kind, setKind] = useState<Kind>("requisitions");
  const [period, setPeriod] = useState<{ since?: string; until?: string }>({});
  const [rows, setRows] = useState<Row[]>([]);
  const [shownKind, setShownKind] = useState<Kind>("requisitions");
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  // Only the latest request fills the table: an earlier one answering late must not replace its result.
  const latest = useRef(0);
  const errors = useFormErrors(["since", "until"]);

  async function load(which: Kind, query: { since?: string; until?: string }, after: string | null) {
    const request = ++latest.current;
    const page = await fetchPage(which, { ...query, limit: 50, ...(after ? { cursor: after } : {}) });
    if (request !== latest.current) return;
    setRows((previous) => (after ? [...previous, ...page.items] : page.items));
    setShownKind(which);
    setCursor(page.next_cursor);
    setLoaded(true);
  }

  useEffect(() => {
    void load("requisitions", {}, null).catch(errors.capture);
  }, []);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const query = periodQuery(String(form.get("since") ?? ""), String(form.get("until") ?? ""));
    errors.clear();
    try {
      await load(kind, query, null);
      setPeriod(query);
    } catch (error) {
      errors.capture(error);
    }
  }

  async function download(): Promise<void> {
    errors.clear();
    try {
      await saveCsv(await fetchCsv(shownKind, period));
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <section aria-labelledby="audit-registers-title">
      <h1 id="audit-registers-title">{t("auditor.registers.title")}</h1>
      <p>{t("auditor.registers.intro")}</p>
      <form class="toolbar inline-form" onSubmit={(event) => void submit(event)} noValidate
            aria-labelledby="audit-registers-title">
        {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
        <Field id="register-kind" label={t("auditor.registers.kind")}>
          <select id="register-kind" name="kind" value={kind}
                  onChange={(event) => setKind((event.currentTarget as HTMLSelectElement).value as Kind)}>
            {KINDS.map((value) => <option key={value} value={value}>{tDynamic("auditor.registers", value)}</option>)}
          </select>
        </Field>
        <Field id="register-since" label={t("auditor.since")} error={errors.field("since")}>
          <input id="register-since" name="since" type="datetime-local" step="1"
                 {...describedBy("register-since", errors.field("since"))} />
        </Field>
        <Field id="register-until" label={t("auditor.until")} error={errors.field("until")}>
          <input id="register-until" name="until" type="datetime-local" step="1"
                 {...describedBy("register-until", errors.field("until"))} />
        </Field>
        <button type="submit">{t("auditor.registers.show")}</button>
        <button type="button" class="secondary" onClick={() => void download()}>{t("auditor.csv")}</button>
      </form>
      <h2>{tDynamic("auditor.registers", shownKind)}</h2>
      {loaded && rows.length === 0 ? <p>{t("auditor.empty")}</p> : null}
      {rows.length > 0 ? (
        <table class="data" data-testid={`register-${shownKind}`}>
          <Header kind={shownKind} />
          <tbody>{rows.map((row) => <tr key={row.id}><Cells kind={shownKind} row={row} /></tr>)}</tbody>
        </table>
      ) : null}
      {cursor ? (
        <button type="button" class="secondary" onClick={() => void load(shownKind, period, cursor).catch(errors.capture)}>
          {t("auditor.more")}
        </button>
      ) : null}
    </section>
  );
}
