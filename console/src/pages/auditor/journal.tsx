// The auditor's journal search: by camera, person, motive and period, paginated, and the same search as CSV.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { periodQuery, saveCsv } from "./csv";

type Line = components["schemas"]["AuditLine"];
type Camera = components["schemas"]["Camera"];

interface Search {
  camera_id?: string;
  person?: string;
  motive?: string;
  since?: string;
  until?: string;
}

const FIELDS = ["camera_id", "person", "motive", "since", "until"] as const;

export function AuditJournalPage() {
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [search, setSearch] = useState<Search>({});
  const [lines, setLines] = useState<Line[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  // Only the latest request fills the table: an earlier one answering late must not replace its result.
  const latest = useRef(0);
  const errors = useFormErrors(FIELDS);

  async function load(query: Search, after: string | null): Promise<void> {
    const request = ++latest.current;
    const page = unwrap(await api.GET("/journal/search", {
      params: { query: { ...query, limit: 50, ...(after ? { cursor: after } : {}) } },
    }));
    if (request !== latest.current) return;
    setLines((previous) => (after ? [...previous, ...page.items] : page.items));
    setCursor(page.next_cursor);
    setLoaded(true);
  }

  useEffect(() => {
    void api.GET("/cameras", { params: { query: { limit: 200 } } })
      .then((result) => setCameras(unwrap(result).items))
      .catch(errors.capture);
    void load({}, null).catch(errors.capture);
  }, []);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? "").trim();
    const query: Search = {
      ...(text("camera_id") ? { camera_id: text("camera_id") } : {}),
      ...(text("person") ? { person: text("person") } : {}),
      ...(text("motive") ? { motive: text("motive") } : {}),
      ...periodQuery(text("since"), text("until")),
    };
    errors.clear();
    try {
      await load(query, null);
      setSearch(query);
    } catch (error) {
      errors.capture(error);
    }
  }

  async function download(): Promise<void> {
    errors.clear();
    try {
      await saveCsv(await api.GET("/journal/search/csv", { params: { query: search }, parseAs: "blob" }));
    } catch (error) {
      errors.capture(error);
    }
  }

  const input = (id: string, name: (typeof FIELDS)[number], type: string) => (
    <Field id={id} label={t(`auditor.journal.${name}` as "auditor.journal.person")} error={errors.field(name)}>
      <input id={id} name={name} type={type} {...describedBy(id, errors.field(name))} />
    </Field>
  );

  return (
    <section aria-labelledby="audit-journal-title">
      <h1 id="audit-journal-title">{t("auditor.journal.title")}</h1>
      <p>{t("auditor.journal.intro")}</p>
      <form class="toolbar inline-form" onSubmit={(event) => void submit(event)} noValidate
            aria-labelledby="audit-journal-title">
        {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
        <Field id="audit-camera" label={t("auditor.journal.camera")} error={errors.field("camera_id")}>
          <select id="audit-camera" name="camera_id" {...describedBy("audit-camera", errors.field("camera_id"))}>
            <option value="">{t("auditor.all")}</option>
            {cameras.map((camera) => <option key={camera.id} value={camera.id}>{camera.name}</option>)}
          </select>
        </Field>
        {input("audit-person", "person", "search")}
        {input("audit-motive", "motive", "search")}
        <Field id="audit-since" label={t("auditor.since")} error={errors.field("since")}>
          <input id="audit-since" name="since" type="datetime-local" step="1"
                 {...describedBy("audit-since", errors.field("since"))} />
        </Field>
        <Field id="audit-until" label={t("auditor.until")} error={errors.field("until")}>
          <input id="audit-until" name="until" type="datetime-local" step="1"
                 {...describedBy("audit-until", errors.field("until"))} />
        </Field>
        <button type="submit">{t("auditor.search")}</button>
        <button type="button" class="secondary" onClick={() => void download()}>{t("auditor.csv")}</button>
      </form>
      {loaded && lines.length === 0 ? <p>{t("auditor.empty")}</p> : null}
      {lines.length > 0 ? (
        <>
          <p aria-live="polite">{t("auditor.count", { n: lines.length })}</p>
          <table class="data" data-testid="journal-lines">
            <thead>
              <tr>
                <th scope="col">{t("auditor.journal.when")}</th>
                <th scope="col">{t("auditor.journal.commune")}</th>
                <th scope="col">{t("auditor.journal.actor")}</th>
                <th scope="col">{t("auditor.journal.action")}</th>
                <th scope="col">{t("auditor.journal.camera")}</th>
                <th scope="col">{t("auditor.journal.motiveColumn")}</th>
                <th scope="col">{t("auditor.journal.recipient")}</th>
              </tr>
            </thead>
            <tbody>
              {lines.map((line) => (
                <tr key={line.id} data-camera={line.camera_id ?? ""}>
                  <td>{formatDateTime(line.occurred_at)}</td>
                  <td>{line.tenant_name}</td>
                  <td>{line.actor_name ?? tDynamic("role", line.actor_role)}</td>
                  <td>{line.action}</td>
                  <td>{line.camera_name ?? ""}</td>
                  <td>{line.motive ?? ""}</td>
                  <td>{line.recipient ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {cursor ? (
        <button type="button" class="secondary" onClick={() => void load(search, cursor).catch(errors.capture)}>
          {t("auditor.more")}
        </button>
      ) : null}
    </section>
  );
}
