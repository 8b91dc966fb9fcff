// A camera's analytics: the rules enabled on it, and a form to add one where every analytic without a legal basis
// today (or without a model able to detect it) is greyed out with the reason and the text that requires it.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useStillShown } from "../../components/use-current";
import { useFormErrors } from "../../components/use-problem";
import { t, tDynamic } from "../../i18n/fr";
import type { Zone } from "./zones";

type Rule = Omit<components["schemas"]["Rule"], "params"> & { params?: Record<string, unknown> };
type RuleOption = components["schemas"]["RuleOption"];

// The parameter each analytic is usually tuned by (the others keep the API's defaults).
const MAIN_PARAMETER: Partial<Record<string, { name: string; min: number; max: number; step: number }>> = {
  loitering: { name: "dwell_s", min: 1, max: 86400, step: 1 },
  abandoned_object: { name: "stationary_s", min: 1, max: 86400, step: 1 },
  excessive_density: { name: "max_objects", min: 1, max: 10000, step: 1 },
  person_on_ground: { name: "hold_s", min: 0, max: 3600, step: 1 },
};

export function unavailableReason(option: RuleOption): string {
  if (option.reference) {
    return t("rules.noLegalBasis", { event: tDynamic("rules.event", option.event_type ?? ""),
                                     reference: option.reference });
  }
  return t("rules.noModel");
}

export function RulesPanel(props: { cameraId: string; zones: readonly Zone[] }) {
  const [rules, setRules] = useState<Rule[]>([]);
  const [options, setOptions] = useState<RuleOption[]>([]);
  const [ruleType, setRuleType] = useState("");
  const [zoneId, setZoneId] = useState("");
  const [direction, setDirection] = useState("both");
  const [parameter, setParameter] = useState("");
  const [cooldown, setCooldown] = useState("60");
  const [notice, setNotice] = useState("");
  const errors = useFormErrors(["rule_type", "zone_id", "params", "params.classes"]);
  const loading = useFormErrors([]);

  const stillShown = useStillShown(props.cameraId);
  async function reload(): Promise<void> {
    const cameraId = props.cameraId;
    const path = { camera_id: cameraId };
    const [rules, options] = await Promise.all([
      api.GET("/cameras/{camera_id}/rules", { params: { path } }).then(unwrap),
      api.GET("/cameras/{camera_id}/rule-options", { params: { path } }).then(unwrap),
    ]);
    if (!stillShown(cameraId)) return;
    setRules(rules);
    setOptions(options);
  }

  useEffect(() => {
    setRuleType("");
    errors.clear();
    void reload().catch(loading.capture);
  }, [props.cameraId]);

  const chosen = options.find((option) => option.rule_type === ruleType);
  const drawable = props.zones.filter((zone) => zone.kind === chosen?.needs);
  const main = MAIN_PARAMETER[ruleType];

  async function add(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    const params: Record<string, unknown> = { cooldown_s: Number.parseFloat(cooldown) };
    if (ruleType === "line_crossing") params["direction"] = direction;
    if (main && parameter !== "") params[main.name] = Number.parseFloat(parameter);
    try {
      unwrap(await api.POST("/cameras/{camera_id}/rules", {
        params: { path: { camera_id: props.cameraId } },
        body: { rule_type: ruleType, zone_id: chosen?.needs ? zoneId || null : null, params, enabled: true },
      }));
      setNotice(t("rules.added", { rule: tDynamic("rule", ruleType) }));
      setRuleType("");
      await reload();
    } catch (error) {
      errors.capture(error);
    }
  }

  async function toggle(rule: Rule): Promise<void> {
    loading.clear();
    try {
      unwrap(await api.PUT("/rules/{rule_id}", { params: { path: { rule_id: rule.id } }, body: {
        rule_type: rule.rule_type, zone_id: rule.zone_id ?? null,
        params: rule.params ?? {}, enabled: !(rule.enabled ?? true) } }));
      await reload();
    } catch (error) {
      loading.capture(error);
    }
  }

  async function remove(rule: Rule): Promise<void> {
    try {
      unwrap(await api.DELETE("/rules/{rule_id}", { params: { path: { rule_id: rule.id } } }));
      setNotice(t("rules.removed", { rule: tDynamic("rule", rule.rule_type) }));
      await reload();
    } catch (error) {
      loading.capture(error);
    }
  }

  const zoneName = (id: string | null | undefined): string =>
    props.zones.find((zone) => zone.id === id)?.name ?? t("rules.wholeFrame");

  return (
    <section aria-labelledby="rules-title" class="rules">
      <h2 id="rules-title">{t("rules.title")}</h2>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <p aria-live="polite" class="notice">{notice}</p>
      <table class="data">
        <caption class="visually-hidden">{t("rules.tableCaption")}</caption>
        <thead>
          <tr><th scope="col">{t("rules.type")}</th><th scope="col">{t("rules.zone")}</th>
              <th scope="col">{t("rules.state")}</th><th scope="col">{t("rules.actions")}</th></tr>
        </thead>
        <tbody>
          {rules.map((rule) => (
            <tr key={rule.id} data-rule-id={rule.id}>
              <td>{tDynamic("rule", rule.rule_type)}</td>
              <td>{zoneName(rule.zone_id)}</td>
              <td>{(rule.enabled ?? true) ? t("rules.enabled")
                   : rule.disabled_reason ? t("rules.disabledBecause", { reason: rule.disabled_reason })
                     : t("rules.disabled")}</td>
              <td>
                <div class="actions">
                  <button type="button" class="secondary" onClick={() => void toggle(rule)}>
                    {(rule.enabled ?? true) ? t("rules.disable") : t("rules.enable")}
                  </button>
                  <button type="button" class="danger" onClick={() => void remove(rule)}>{t("rules.remove")}</button>
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form noValidate class="inline-form" aria-labelledby="rule-add-title" onSubmit={(e) => void add(e)}>
        <h3 id="rule-add-title">{t("rules.addTitle")}</h3>
        {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
        <fieldset class={errors.field("rule_type") ? "rule-options invalid" : "rule-options"}
                  aria-describedby={errors.field("rule_type") ? "rule-type-error" : undefined}>
          <legend>{t("rules.type")}</legend>
          {options.map((option) => (
            <div key={option.rule_type} class={option.available ? "rule-option" : "rule-option unavailable"}
                 data-rule-type={option.rule_type}>
              <input type="radio" name="rule_type" id={`rule-type-${option.rule_type}`} value={option.rule_type}
                     checked={ruleType === option.rule_type} disabled={!option.available}
                     aria-describedby={option.available ? undefined : `rule-reason-${option.rule_type}`}
                     onChange={() => { setRuleType(option.rule_type); setParameter(""); setZoneId(""); }} />
              <label for={`rule-type-${option.rule_type}`}>
                {tDynamic("rule", option.rule_type)}
                {option.event_type ? <span class="hint"> — {tDynamic("rules.event", option.event_type)}</span> : null}
              </label>
              {option.available ? null : (
                <p class="reason" id={`rule-reason-${option.rule_type}`}>{unavailableReason(option)}</p>
              )}
            </div>
          ))}
          {errors.field("rule_type") ? (
            <p class="field-error" id="rule-type-error" role="alert">{errors.field("rule_type")}</p>
          ) : null}
        </fieldset>
        {chosen?.needs ? (
          <Field id="rule-zone" label={t(chosen.needs === "line" ? "rules.line" : "rules.zone")}
                 error={errors.field("zone_id")}>
            <select id="rule-zone" value={zoneId} onChange={(e) => setZoneId((e.currentTarget as HTMLSelectElement).value)}
                    {...describedBy("rule-zone", errors.field("zone_id"))}>
              <option value="">{t("rules.chooseZone")}</option>
              {drawable.map((zone) => <option key={zone.id} value={zone.id}>{zone.name}</option>)}
            </select>
          </Field>
        ) : null}
        {ruleType === "line_crossing" ? (
          <Field id="rule-direction" label={t("rules.direction")}>
            <select id="rule-direction" value={direction}
                    onChange={(e) => setDirection((e.currentTarget as HTMLSelectElement).value)}>
              {["both", "left_to_right", "right_to_left"].map((value) => (
                <option key={value} value={value}>{tDynamic("rules.direction", value)}</option>
              ))}
            </select>
          </Field>
        ) : null}
        {main ? (
          <Field id="rule-parameter" label={tDynamic("rules.param", main.name)} error={errors.field("params")}>
            <input id="rule-parameter" type="number" min={main.min} max={main.max} step={main.step} value={parameter}
                   onInput={(e) => setParameter((e.currentTarget as HTMLInputElement).value)}
                   {...describedBy("rule-parameter", errors.field("params"))} />
          </Field>
        ) : null}
        <Field id="rule-cooldown" label={t("rules.cooldown")} error={main ? undefined : errors.field("params")}>
          <input id="rule-cooldown" type="number" value={cooldown}
                 onInput={(e) => setCooldown((e.currentTarget as HTMLInputElement).value)}
                 {...describedBy("rule-cooldown", main ? undefined : errors.field("params"))} />
        </Field>
        <button type="submit" disabled={!ruleType}>{t("rules.add")}</button>
      </form>
    </section>
  );
}
