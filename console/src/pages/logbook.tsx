// The main courante: the logbook of the period (searchable), free entries, and the shift handovers.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { describedBy, Field } from "../components/field";
import { useStillShown } from "../components/use-current";
import { useFormErrors } from "../components/use-problem";
import { formatDateTime } from "../format";
import { t } from "../i18n/fr";

type Entry = components["schemas"]["LogbookEntry"];
type Handover = components["schemas"]["Handover"];

export function LogbookPage() {
  const [hours, setHours] = useState(24);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [searched, setSearched] = useState("");
  const [handovers, setHandovers] = useState<Handover[]>([]);
  const entryErrors = useFormErrors(["text"]);
  const handoverErrors = useFormErrors(["notes", "hours"]);

  const period = `${hours}\u0000${searched}`;
  const stillShown = useStillShown(period);

  async function load(after: string | null): Promise<void> {
    const asked = period;
    const query = { hours, limit: 100, ...(after ? { cursor: after } : {}), ...(searched ? { search: searched } : {}) };
    const page = unwrap(await api.GET("/logbook", { params: { query } }));
    // Words typed or a period chosen meanwhile: the answer to the earlier search must not replace the later one's.
    if (!stillShown(asked)) return;
    setEntries((previous) => (after ? [...previous, ...page.items] : page.items));
    setCursor(page.next_cursor);
  }

  async function loadHandovers(): Promise<void> {
    setHandovers(unwrap(await api.GET("/logbook/handovers", { params: { query: { limit: 10 } } })));
  }

  useEffect(() => {
    void load(null).catch(entryErrors.capture);
  }, [hours, searched]);
  // The API searches the whole period; a pause in typing sends the words.
  useEffect(() => {
    const timer = setTimeout(() => setSearched(search.trim()), 300);
    return () => clearTimeout(timer);
  }, [search]);
  useEffect(() => {
    void loadHandovers().catch(handoverErrors.capture);
  }, []);

  async function addEntry(event: Event): Promise<void> {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    entryErrors.clear();
    try {
      unwrap(await api.POST("/logbook", { body: { text: String(new FormData(form).get("text") ?? "") } }));
      form.reset();
      await load(null);
    } catch (error) {
      entryErrors.capture(error);
    }
  }

  async function handOver(event: Event): Promise<void> {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const notes = String(new FormData(form).get("notes") ?? "");
    handoverErrors.clear();
    try {
      unwrap(await api.POST("/logbook/handovers", { body: { hours: 8, notes: notes || null } }));
      form.reset();
      await loadHandovers();
    } catch (error) {
      handoverErrors.capture(error);
    }
  }

  const shown = entries;
  return (
    <section aria-labelledby="logbook-title">
      <h1 id="logbook-title">{t("logbook.title")}</h1>
      <div class="toolbar">
        <Field id="logbook-search" label={t("logbook.search")}>
          <input id="logbook-search" type="search" value={search}
                 onInput={(event) => setSearch((event.currentTarget as HTMLInputElement).value)} />
        </Field>
        <Field id="logbook-hours" label={t("logbook.hours")}>
          <select id="logbook-hours" value={String(hours)}
                  onChange={(event) => setHours(Number((event.currentTarget as HTMLSelectElement).value))}>
            {[8, 24, 72, 168].map((value) => (
              <option key={value} value={String(value)}>{value}</option>
            ))}
          </select>
        </Field>
      </div>
      <form class="inline-form" onSubmit={(event) => void addEntry(event)} noValidate>
        <h2>{t("logbook.add")}</h2>
        {entryErrors.form ? <p class="form-error" role="alert">{entryErrors.form}</p> : null}
        <Field id="logbook-text" label={t("logbook.text")} error={entryErrors.field("text")}>
          <textarea id="logbook-text" name="text" rows={2} {...describedBy("logbook-text", entryErrors.field("text"))} />
        </Field>
        <button type="submit">{t("logbook.submit")}</button>
      </form>
      {shown.length === 0 ? (
        <p>{t("logbook.empty")}</p>
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th scope="col">{t("logbook.when")}</th>
              <th scope="col">{t("logbook.kind")}</th>
              <th scope="col">{t("logbook.action")}</th>
              <th scope="col">{t("logbook.text")}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((entry) => (
              <tr key={entry.id}>
                <td>{formatDateTime(entry.created_at)}</td>
                <td>{entry.kind}</td>
                <td>{entry.action}</td>
                <td>{entry.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor ? (
        <button type="button" class="secondary" onClick={() => void load(cursor)}>{t("logbook.more")}</button>
      ) : null}

      <h2>{t("logbook.handovers")}</h2>
      <form class="inline-form" onSubmit={(event) => void handOver(event)} noValidate>
        {handoverErrors.form ? <p class="form-error" role="alert">{handoverErrors.form}</p> : null}
        <Field id="handover-notes" label={t("logbook.handoverNotes")} error={handoverErrors.field("notes")}>
          <textarea id="handover-notes" name="notes" rows={3}
                    {...describedBy("handover-notes", handoverErrors.field("notes"))} />
        </Field>
        <button type="submit">{t("logbook.handoverSubmit")}</button>
      </form>
      {handovers.length === 0 ? (
        <p>{t("logbook.handoverNone")}</p>
      ) : (
        <ul class="handovers">
          {handovers.map((handover) => (
            <li key={handover.id}>
              <strong>{formatDateTime(handover.created_at)}</strong> — {handover.notes ?? ""}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
