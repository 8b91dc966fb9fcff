// Forces and routing (department admin): the forces competent in each commune, the routing rules that add or remove
// a force for a commune, an event type and hours, and the alert policies (severity, claim SLA, auto-dispatch).
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import { fromClock, toClock } from "./minutes";
import "./forces.css";

type Force = components["schemas"]["Force"];
type Commune = components["schemas"]["Commune"];
type Tenant = components["schemas"]["Tenant"];
type RoutingRule = components["schemas"]["RoutingRuleRecord"];
type Policy = components["schemas"]["PolicyRecord"];
type PolicyType = components["schemas"]["PolicyInput"]["rule_type"];
type ForceKind = components["schemas"]["ForceCreate"]["kind"];

const KINDS: ForceKind[] = ["police_nationale", "gendarmerie", "police_municipale", "sdis"];
const EVENT_TYPES: PolicyType[] = ["intrusion", "loitering", "line_crossing", "wrong_way", "excessive_density",
  "crowd_movement", "abandoned_object", "person_on_ground", "camera_tamper", "fire_start", "weapon", "camera_offline"];

function value(event: Event): string {
  return (event.currentTarget as HTMLInputElement | HTMLSelectElement).value;
}

function parseCommunes(text: string): string[] {
  return text.split(/[\s,;]+/).map((code) => code.trim().toUpperCase()).filter(Boolean);
}

export function ForcesPage() {
  const [forces, setForces] = useState<Force[]>([]);
  const [communes, setCommunes] = useState<Commune[]>([]);
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [notice, setNotice] = useState("");
  const loading = useFormErrors([]);

  async function reloadForces(): Promise<void> {
    setForces(unwrap(await api.GET("/forces", { params: { query: { limit: 200 } } })).items);
  }

  useEffect(() => {
    void reloadForces().catch(loading.capture);
    void api.GET("/communes", {}).then(unwrap).then(setCommunes).catch(loading.capture);
    void api.GET("/tenants", { params: { query: { limit: 200 } } }).then(unwrap)
      .then((page) => setTenants(page.items)).catch(loading.capture);
  }, []);

  const communeName = (code: string | null | undefined): string => {
    if (!code) return t("forces.anyCommune");
    const found = communes.find((commune) => commune.insee_code === code);
    return found ? `${found.name} (${code})` : code;
  };

  return (
    <section aria-labelledby="forces-title">
      <h1 id="forces-title">{t("forces.title")}</h1>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <p aria-live="polite" class="notice">{notice}</p>
      <h2 id="forces-list-title">{t("forces.listTitle")}</h2>
      <table class="data" aria-labelledby="forces-list-title">
        <thead>
          <tr>
            <th scope="col">{t("forces.name")}</th><th scope="col">{t("forces.kind")}</th>
            <th scope="col">{t("forces.phone")}</th><th scope="col">{t("forces.communes")}</th>
            <th scope="col">{t("forces.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {forces.map((force) => (
            <ForceRow key={force.id} force={force} communeName={communeName}
                      onSaved={(name) => { setNotice(t("forces.saved", { name })); void reloadForces(); }} />
          ))}
        </tbody>
      </table>
      <ForceForm tenants={tenants} communes={communes}
                 onCreated={(name) => { setNotice(t("forces.created", { name })); void reloadForces(); }} />
      <RoutingRules forces={forces} communes={communes} communeName={communeName} onNotice={setNotice} />
      <Policies onNotice={setNotice} />
    </section>
  );
}

function ForceRow(props: { force: Force; communeName: (code: string) => string; onSaved: (name: string) => void }) {
  const { force } = props;
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(force.name);
  const [phone, setPhone] = useState(force.phone ?? "");
  const [codes, setCodes] = useState(force.communes.join(", "));
  const errors = useFormErrors(["name", "phone", "communes"]);
  const prefix = `force-${force.id}`;

  async function save(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    try {
      unwrap(await api.PATCH("/forces/{force_id}", { params: { path: { force_id: force.id } },
                                                     body: { name, phone: phone || null, communes: parseCommunes(codes) } }));
      setEditing(false);
      props.onSaved(name);
    } catch (error) {
      errors.capture(error);
    }
  }

  if (!editing) {
    return (
      <tr data-force-name={force.name}>
        <td>{force.name}</td>
        <td>{tDynamic("force", force.kind)}</td>
        <td>{force.phone ?? "—"}</td>
        <td>{force.communes.map(props.communeName).join(", ")}</td>
        <td><button type="button" class="secondary" onClick={() => setEditing(true)}>
          {t("forces.edit", { name: force.name })}
        </button></td>
      </tr>
    );
  }
  const communesError = errors.field("communes") ?? errors.form;
  return (
    <tr data-force-name={force.name}>
      <td colSpan={5}>
        <form noValidate class="form-grid" aria-label={t("forces.edit", { name: force.name })} onSubmit={(e) => void save(e)}>
          <Field id={`${prefix}-name`} label={t("forces.name")} error={errors.field("name")}>
            <input id={`${prefix}-name`} value={name} onInput={(e) => setName(value(e))}
                   {...describedBy(`${prefix}-name`, errors.field("name"))} />
          </Field>
          <Field id={`${prefix}-phone`} label={t("forces.phone")} error={errors.field("phone")}>
            <input id={`${prefix}-phone`} value={phone} onInput={(e) => setPhone(value(e))}
                   {...describedBy(`${prefix}-phone`, errors.field("phone"))} />
          </Field>
          <Field id={`${prefix}-communes`} label={t("forces.communesInput")} error={communesError}>
            <input id={`${prefix}-communes`} value={codes} onInput={(e) => setCodes(value(e))}
                   {...describedBy(`${prefix}-communes`, communesError)} />
          </Field>
          <div class="actions">
            <button type="submit">{t("forces.save")}</button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>{t("forces.cancel")}</button>
          </div>
        </form>
      </td>
    </tr>
  );
}

function ForceForm(props: { tenants: Tenant[]; communes: Commune[]; onCreated: (name: string) => void }) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<ForceKind>("police_municipale");
  const [phone, setPhone] = useState("");
  const [codes, setCodes] = useState("");
  const [tenantId, setTenantId] = useState("");
  const errors = useFormErrors(["name", "kind", "phone", "communes", "tenant_id"]);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    try {
      unwrap(await api.POST("/forces", { body: { name, kind, phone: phone || null, communes: parseCommunes(codes),
                                                 tenant_id: tenantId || null } }));
      props.onCreated(name);
      setName("");
      setCodes("");
      setPhone("");
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <form noValidate class="inline-form" aria-labelledby="force-add-title" onSubmit={(e) => void submit(e)}>
      <h2 id="force-add-title">{t("forces.addTitle")}</h2>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="form-grid">
        <Field id="force-name" label={t("forces.name")} error={errors.field("name")}>
          <input id="force-name" value={name} onInput={(e) => setName(value(e))}
                 {...describedBy("force-name", errors.field("name"))} />
        </Field>
        <Field id="force-kind" label={t("forces.kind")} error={errors.field("kind")}>
          <select id="force-kind" value={kind} onChange={(e) => setKind(value(e) as ForceKind)}>
            {KINDS.map((k) => <option key={k} value={k}>{tDynamic("force", k)}</option>)}
          </select>
        </Field>
        <Field id="force-phone" label={t("forces.phone")} error={errors.field("phone")}>
          <input id="force-phone" value={phone} onInput={(e) => setPhone(value(e))}
                 {...describedBy("force-phone", errors.field("phone"))} />
        </Field>
        <Field id="force-communes" label={t("forces.communesInput")} error={errors.field("communes")}>
          <input id="force-communes" value={codes} onInput={(e) => setCodes(value(e))} list="commune-codes"
                 {...describedBy("force-communes", errors.field("communes"))} />
        </Field>
        <Field id="force-tenant" label={t("forces.tenant")} error={errors.field("tenant_id")}>
          <select id="force-tenant" value={tenantId} onChange={(e) => setTenantId(value(e))}
                  {...describedBy("force-tenant", errors.field("tenant_id"))}>
            <option value="">{t("forces.noTenant")}</option>
            {props.tenants.map((tenant) => <option key={tenant.id} value={tenant.id}>{tenant.name}</option>)}
          </select>
        </Field>
      </div>
      <datalist id="commune-codes">
        {props.communes.map((c) => <option key={c.insee_code} value={c.insee_code}>{c.name}</option>)}
      </datalist>
      <button type="submit">{t("forces.add")}</button>
    </form>
  );
}

function RoutingRules(props: { forces: Force[]; communes: Commune[]; communeName: (code: string | null) => string;
                               onNotice: (text: string) => void }) {
  const [rules, setRules] = useState<RoutingRule[]>([]);
  const [forceId, setForceId] = useState("");
  const [effect, setEffect] = useState<"add" | "remove">("add");
  const [insee, setInsee] = useState("");
  const [eventType, setEventType] = useState("");
  const [start, setStart] = useState("00:00");
  const [end, setEnd] = useState("24:00");
  const [note, setNote] = useState("");
  const errors = useFormErrors(["force_id", "effect", "insee_code", "event_type", "start_minute", "end_minute", "note"]);
  const loading = useFormErrors([]);

  async function reload(): Promise<void> {
    setRules(unwrap(await api.GET("/routing-rules", {})));
  }

  useEffect(() => {
    void reload().catch(loading.capture);
  }, []);

  const forceName = (id: string): string => props.forces.find((force) => force.id === id)?.name ?? id;

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    try {
      unwrap(await api.POST("/routing-rules", { body: {
        force_id: forceId, effect, insee_code: insee || null, event_type: eventType || null,
        start_minute: fromClock(start, 0), end_minute: fromClock(end, 1440), note: note || null,
      } }));
      props.onNotice(t("routing.added"));
      setNote("");
      await reload();
    } catch (error) {
      errors.capture(error);
    }
  }

  async function remove(rule: RoutingRule): Promise<void> {
    try {
      unwrap(await api.DELETE("/routing-rules/{routing_rule_id}", { params: { path: { routing_rule_id: rule.id } } }));
      props.onNotice(t("routing.removed"));
      await reload();
    } catch (error) {
      loading.capture(error);
    }
  }

  return (
    <section aria-labelledby="routing-title">
      <h2 id="routing-title">{t("routing.title")}</h2>
      <p class="hint">{t("routing.hint")}</p>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <table class="data">
        <caption class="visually-hidden">{t("routing.title")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("routing.effect")}</th><th scope="col">{t("routing.force")}</th>
            <th scope="col">{t("routing.commune")}</th><th scope="col">{t("routing.eventType")}</th>
            <th scope="col">{t("routing.hours")}</th><th scope="col">{t("routing.note")}</th>
            <th scope="col">{t("forces.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {rules.map((rule) => (
            <tr key={rule.id} data-routing-rule={rule.id}>
              <td>{tDynamic("routing.effect", rule.effect)}</td>
              <td>{forceName(rule.force_id)}</td>
              <td>{props.communeName(rule.insee_code)}</td>
              <td>{rule.event_type ? tDynamic("rule", rule.event_type) : t("routing.anyEvent")}</td>
              <td>{toClock(rule.start_minute)}–{toClock(rule.end_minute)}</td>
              <td>{rule.note ?? ""}</td>
              <td><button type="button" class="danger" onClick={() => void remove(rule)}>{t("routing.remove")}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form noValidate class="inline-form" aria-labelledby="routing-add-title" onSubmit={(e) => void submit(e)}>
        <h3 id="routing-add-title">{t("routing.addTitle")}</h3>
        {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
        <div class="form-grid">
          <Field id="routing-effect" label={t("routing.effect")} error={errors.field("effect")}>
            <select id="routing-effect" value={effect} onChange={(e) => setEffect(value(e) as "add" | "remove")}>
              <option value="add">{t("routing.effect.add")}</option>
              <option value="remove">{t("routing.effect.remove")}</option>
            </select>
          </Field>
          <Field id="routing-force" label={t("routing.force")} error={errors.field("force_id")}>
            <select id="routing-force" value={forceId} onChange={(e) => setForceId(value(e))}
                    {...describedBy("routing-force", errors.field("force_id"))}>
              <option value="">{t("routing.choose")}</option>
              {props.forces.map((force) => <option key={force.id} value={force.id}>{force.name}</option>)}
            </select>
          </Field>
          <Field id="routing-commune" label={t("routing.commune")} error={errors.field("insee_code")}>
            <select id="routing-commune" value={insee} onChange={(e) => setInsee(value(e))}
                    {...describedBy("routing-commune", errors.field("insee_code"))}>
              <option value="">{t("forces.anyCommune")}</option>
              {props.communes.map((c) => <option key={c.insee_code} value={c.insee_code}>{c.name} ({c.insee_code})</option>)}
            </select>
          </Field>
          <Field id="routing-event" label={t("routing.eventType")} error={errors.field("event_type")}>
            <select id="routing-event" value={eventType} onChange={(e) => setEventType(value(e))}
                    {...describedBy("routing-event", errors.field("event_type"))}>
              <option value="">{t("routing.anyEvent")}</option>
              {EVENT_TYPES.map((type) => <option key={type} value={type}>{tDynamic("rule", type)}</option>)}
            </select>
          </Field>
          <Field id="routing-start" label={t("routing.start")} error={errors.field("start_minute")}>
            <input id="routing-start" value={start} onInput={(e) => setStart(value(e))} inputMode="numeric"
                   pattern="[0-9]{1,2}:[0-9]{2}" {...describedBy("routing-start", errors.field("start_minute"))} />
          </Field>
          <Field id="routing-end" label={t("routing.end")} error={errors.field("end_minute")}>
            <input id="routing-end" value={end} onInput={(e) => setEnd(value(e))} inputMode="numeric"
                   pattern="[0-9]{1,2}:[0-9]{2}" {...describedBy("routing-end", errors.field("end_minute"))} />
          </Field>
          <Field id="routing-note" label={t("routing.note")} error={errors.field("note")}>
            <input id="routing-note" value={note} onInput={(e) => setNote(value(e))}
                   {...describedBy("routing-note", errors.field("note"))} />
          </Field>
        </div>
        <button type="submit">{t("routing.add")}</button>
      </form>
    </section>
  );
}

function Policies(props: { onNotice: (text: string) => void }) {
  const [policies, setPolicies] = useState<Policy[]>([]);
  const loading = useFormErrors([]);

  useEffect(() => {
    void api.GET("/alert-policies", {}).then(unwrap).then(setPolicies).catch(loading.capture);
  }, []);

  const known = new Set(policies.map((policy) => policy.rule_type));
  // A type without a stored policy runs on the engine's defaults: its form starts empty rather than guess them.
  const rows: (Policy | { rule_type: PolicyType })[] = [
    ...policies, ...EVENT_TYPES.filter((type) => !known.has(type)).map((type) => ({ rule_type: type }))];

  return (
    <section aria-labelledby="policies-title">
      <h2 id="policies-title">{t("policies.title")}</h2>
      <p class="hint">{t("policies.hint")}</p>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <div class="policies">
        {rows.map((policy) => (
          <PolicyForm key={policy.rule_type} policy={policy} saved={known.has(policy.rule_type)}
                      onSaved={(saved) => {
                        setPolicies([...policies.filter((p) => p.rule_type !== saved.rule_type), saved]);
                        props.onNotice(t("policies.saved", { rule: tDynamic("rule", saved.rule_type) }));
                      }} />
        ))}
      </div>
    </section>
  );
}

function PolicyForm(props: { policy: Policy | { rule_type: PolicyType | string }; saved: boolean;
                             onSaved: (policy: Policy) => void }) {
  const names = ["severity", "sla_claim_s", "dedupe_window_s", "cooldown_s"] as const;
  const stored = "severity" in props.policy ? props.policy : null;
  const [draft, setDraft] = useState<Record<string, string>>(
    Object.fromEntries(names.map((name) => [name, stored ? String(stored[name]) : ""])));
  const [auto, setAuto] = useState(stored?.auto_dispatch ?? false);
  const errors = useFormErrors([...names, "auto_dispatch"]);
  const prefix = `policy-${props.policy.rule_type}`;

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    // An empty optional field is left out (the API applies its default); the severity is always sent, so that a
    // missing one is refused next to its field.
    const given = Object.fromEntries(names.filter((name) => name === "severity" || (draft[name] ?? "").trim() !== "")
      .map((name) => [name, (draft[name] ?? "").trim() === "" ? null : Number(draft[name])]));
    try {
      props.onSaved(unwrap(await api.PUT("/alert-policies", { body: {
        rule_type: props.policy.rule_type as PolicyType, auto_dispatch: auto, ...given,
      } as components["schemas"]["PolicyInput"] })));
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <form noValidate class="policy card" aria-labelledby={`${prefix}-title`} data-policy={props.policy.rule_type}
          onSubmit={(e) => void submit(e)}>
      <h3 id={`${prefix}-title`}>{tDynamic("rule", props.policy.rule_type)}
        {props.saved ? null : <span class="hint"> — {t("policies.default")}</span>}</h3>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      {names.map((name) => (
        <Field key={name} id={`${prefix}-${name}`} label={tDynamic("policies", name)} error={errors.field(name)}>
          <input id={`${prefix}-${name}`} type="number" value={draft[name] ?? ""} placeholder={t("policies.engineDefault")}
                 onInput={(e) => setDraft({ ...draft, [name]: value(e) })}
                 {...describedBy(`${prefix}-${name}`, errors.field(name))} />
        </Field>
      ))}
      <div class="checkbox">
        <input id={`${prefix}-auto`} type="checkbox" checked={auto}
               onChange={(e) => setAuto((e.currentTarget as HTMLInputElement).checked)} />
        <label for={`${prefix}-auto`}>{t("policies.auto_dispatch")}</label>
      </div>
      <button type="submit">{t("policies.save", { rule: tDynamic("rule", props.policy.rule_type) })}</button>
    </form>
  );
}
