// Users and habilitations (department admin): invite a person to a role (the single-use enrolment link is shown
// once), roles per tenant, the habilitation of CSU agents with its expiry warnings, lock and unlock, forced
// re-enrolment and the end of every session of an account.
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { describedBy, Field } from "../../components/field";
import { useFormErrors } from "../../components/use-problem";
import { formatDateTime } from "../../format";
import { t, tDynamic } from "../../i18n/fr";
import { daysLeft, formatDay, HABILITATED_ROLES, habilitationState } from "./habilitation";
import "./users.css";

type User = components["schemas"]["User"];
type Invitation = components["schemas"]["Invitation"];
type Tenant = components["schemas"]["Tenant"];
type Force = components["schemas"]["Force"];
type Role = components["schemas"]["MembershipInput"]["role"];
type EnrolmentLink = components["schemas"]["EnrolmentLink"];

const ROLES: Role[] = ["operator", "supervisor", "department_admin", "tenant_admin", "officer", "auditor", "finance"];

function value(event: Event): string {
  return (event.currentTarget as HTMLInputElement | HTMLSelectElement).value;
}

export function UsersPage() {
  const [users, setUsers] = useState<User[]>([]);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [forces, setForces] = useState<Force[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [link, setLink] = useState<{ who: string; enrolment: EnrolmentLink } | null>(null);
  const [notice, setNotice] = useState("");
  const loading = useFormErrors([]);

  async function reload(): Promise<void> {
    const [userPage, invitationPage] = await Promise.all([
      api.GET("/users", { params: { query: { limit: 200 } } }).then(unwrap),
      api.GET("/invitations", { params: { query: { limit: 200 } } }).then(unwrap),
    ]);
    setUsers(userPage.items);
    setInvitations(invitationPage.items);
  }

  useEffect(() => {
    void reload().catch(loading.capture);
    void api.GET("/tenants", { params: { query: { limit: 200 } } }).then(unwrap)
      .then((page) => setTenants(page.items)).catch(loading.capture);
    void api.GET("/forces", { params: { query: { limit: 200 } } }).then(unwrap)
      .then((page) => setForces(page.items)).catch(loading.capture);
  }, []);

  const tenantName = (id: string): string => tenants.find((tenant) => tenant.id === id)?.name ?? id;
  const user = users.find((candidate) => candidate.id === selected) ?? null;
  const expiring = users.filter((u) => ["expiring", "expired"].includes(habilitationState(u.habilitation.expires_on))
                                       && u.memberships.some((m) => HABILITATED_ROLES.includes(m.role)));

  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">{t("users.title")}</h1>
      {loading.form ? <p class="form-error" role="alert">{loading.form}</p> : null}
      <p aria-live="polite" class="notice">{notice}</p>
      {expiring.length > 0 ? (
        <div class="warning-box" role="status">
          <h2>{t("users.expiringTitle")}</h2>
          <ul>
            {expiring.map((u) => (
              <li key={u.id}>{habilitationText(u.habilitation.expires_on)} — {u.display_name}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <InviteForm tenants={tenants} forces={forces} onInvited={(who, enrolment) => {
        setLink({ who, enrolment });
        void reload();
      }} />
      {link ? <LinkBox who={link.who} enrolment={link.enrolment} onClose={() => setLink(null)} /> : null}

      <h2 id="users-list-title">{t("users.listTitle")}</h2>
      <table class="data" aria-labelledby="users-list-title">
        <thead>
          <tr>
            <th scope="col">{t("users.name")}</th><th scope="col">{t("users.email")}</th>
            <th scope="col">{t("users.roles")}</th><th scope="col">{t("users.habilitation")}</th>
            <th scope="col">{t("users.status")}</th><th scope="col">{t("users.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id} data-user-email={u.email} aria-current={u.id === selected ? "true" : undefined}>
              <td>{u.display_name}</td>
              <td>{u.email}</td>
              <td>{u.memberships.map((m) => `${tDynamic("role", m.role)} (${tenantName(m.tenant_id)})`).join(", ")}</td>
              <td class={`habilitation-${habilitationState(u.habilitation.expires_on)}`}>
                {habilitationText(u.habilitation.expires_on)}
              </td>
              <td>{tDynamic("users.state", u.status)}{u.enrolment_pending ? ` — ${t("users.enrolmentPending")}` : ""}</td>
              <td>
                <button type="button" class="secondary" onClick={() => setSelected(u.id)}>
                  {t("users.manage", { name: u.display_name })}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {user ? (
        <UserPanel key={user.id} user={user} tenants={tenants} forces={forces} tenantName={tenantName}
                   onChanged={(message, enrolment) => {
                     setNotice(message);
                     if (enrolment) setLink({ who: user.email, enrolment });
                     void reload();
                   }} />
      ) : null}

      <h2 id="invitations-title">{t("users.invitationsTitle")}</h2>
      <table class="data" aria-labelledby="invitations-title">
        <thead>
          <tr>
            <th scope="col">{t("users.email")}</th><th scope="col">{t("users.roles")}</th>
            <th scope="col">{t("users.status")}</th><th scope="col">{t("users.expires")}</th>
            <th scope="col">{t("users.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {invitations.map((invitation) => (
            <tr key={invitation.id} data-invitation-email={invitation.email}>
              <td>{invitation.display_name} &lt;{invitation.email}&gt;</td>
              <td>{tDynamic("role", invitation.role)} ({tenantName(invitation.tenant_id)})</td>
              <td>{tDynamic("users.invitation", invitation.status)}</td>
              <td>{formatDateTime(invitation.expires_at)}</td>
              <td>
                {invitation.status === "pending" ? (
                  <button type="button" class="danger" onClick={() => void (async () => {
                    try {
                      unwrap(await api.DELETE("/invitations/{invitation_id}",
                                              { params: { path: { invitation_id: invitation.id } } }));
                      setNotice(t("users.invitationRevoked", { email: invitation.email }));
                      await reload();
                    } catch (error) {
                      loading.capture(error);
                    }
                  })()}>
                    {t("users.revokeInvitation", { email: invitation.email })}
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function habilitationText(expiresOn: string | null | undefined): string {
  const state = habilitationState(expiresOn);
  if (!expiresOn || state === "none") return t("users.noHabilitation");
  const left = daysLeft(expiresOn);
  const day = formatDay(expiresOn);
  if (state === "expired") return t("users.habilitationExpired", { date: day });
  if (state === "expiring") return t("users.habilitationExpiring", { date: day, n: left });
  return t("users.habilitationValid", { date: day });
}

function LinkBox(props: { who: string; enrolment: EnrolmentLink; onClose: () => void }) {
  return (
    <section class="link-box" aria-labelledby="link-title" role="status">
      <h2 id="link-title">{t("users.linkTitle", { who: props.who })}</h2>
      <p>{t("users.linkHint", { t: formatDateTime(props.enrolment.expires_at) })}</p>
      <Field id="enrolment-link" label={t("users.link")}>
        <input id="enrolment-link" readOnly value={props.enrolment.link}
               onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
      </Field>
      <button type="button" class="secondary" onClick={props.onClose}>{t("users.linkClose")}</button>
    </section>
  );
}

function MembershipFields(props: {
  prefix: string; tenants: Tenant[]; forces: Force[]; tenantId: string; role: string; forceId: string;
  errors: ReturnType<typeof useFormErrors>; fieldPrefix: string;
  onChange: (change: { tenantId?: string; role?: string; forceId?: string }) => void;
}) {
  const { prefix, errors, fieldPrefix } = props;
  const tenantError = errors.field(`${fieldPrefix}tenant_id`) ?? errors.field("membership.tenant_id");
  const roleError = errors.field(`${fieldPrefix}role`) ?? errors.field("membership.role");
  const forceError = errors.field(`${fieldPrefix}force_id`) ?? errors.field("membership.force_id");
  return (
    <>
      <Field id={`${prefix}-tenant`} label={t("users.tenant")} error={tenantError}>
        <select id={`${prefix}-tenant`} value={props.tenantId} onChange={(e) => props.onChange({ tenantId: value(e) })}
                {...describedBy(`${prefix}-tenant`, tenantError)}>
          <option value="">{t("users.choose")}</option>
          {props.tenants.map((tenant) => <option key={tenant.id} value={tenant.id}>{tenant.name}</option>)}
        </select>
      </Field>
      <Field id={`${prefix}-role`} label={t("users.role")} error={roleError}>
        <select id={`${prefix}-role`} value={props.role} onChange={(e) => props.onChange({ role: value(e) })}
                {...describedBy(`${prefix}-role`, roleError)}>
          {ROLES.map((role) => <option key={role} value={role}>{tDynamic("role", role)}</option>)}
        </select>
      </Field>
      {props.role === "officer" ? (
        <Field id={`${prefix}-force`} label={t("users.force")} error={forceError}>
          <select id={`${prefix}-force`} value={props.forceId} onChange={(e) => props.onChange({ forceId: value(e) })}
                  {...describedBy(`${prefix}-force`, forceError)}>
            <option value="">{t("users.choose")}</option>
            {props.forces.filter((force) => !props.tenantId || !force.tenant_id || force.tenant_id === props.tenantId)
              .map((force) => <option key={force.id} value={force.id}>{force.name}</option>)}
          </select>
        </Field>
      ) : null}
    </>
  );
}

function HabilitationFields(props: { prefix: string; errors: ReturnType<typeof useFormErrors>;
                                     values: Record<string, string>; onChange: (name: string, v: string) => void }) {
  const names = ["agrement_number", "enquiry_date", "expires_on", "training_date"] as const;
  return (
    <fieldset>
      <legend>{t("users.habilitationLegend")}</legend>
      {names.map((name) => {
        const id = `${props.prefix}-${name}`;
        const error = props.errors.field(`habilitation.${name}`) ?? (name === "expires_on"
          ? props.errors.field("habilitation") : undefined);
        return (
          <Field key={name} id={id} label={tDynamic("users.hab", name)} error={error}>
            <input id={id} type={name === "agrement_number" ? "text" : "date"} value={props.values[name] ?? ""}
                   onInput={(e) => props.onChange(name, value(e))} {...describedBy(id, error)} />
          </Field>
        );
      })}
    </fieldset>
  );
}

function habilitationBody(values: Record<string, string>): components["schemas"]["HabilitationInput"] | null {
  if (!Object.values(values).some((v) => v.trim())) return null;
  return { agrement_number: values["agrement_number"] ?? "", enquiry_date: values["enquiry_date"] ?? "",
           expires_on: values["expires_on"] ?? "",
           ...(values["training_date"] ? { training_date: values["training_date"] } : {}) };
}

function InviteForm(props: { tenants: Tenant[]; forces: Force[];
                             onInvited: (who: string, enrolment: EnrolmentLink) => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [tenantId, setTenantId] = useState("");
  const [role, setRole] = useState<string>("operator");
  const [forceId, setForceId] = useState("");
  const [habilitation, setHabilitation] = useState<Record<string, string>>({});
  const errors = useFormErrors(["email", "display_name", "membership.tenant_id", "membership.role",
                                "membership.force_id", "habilitation", "habilitation.agrement_number",
                                "habilitation.enquiry_date", "habilitation.expires_on", "habilitation.training_date"]);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    errors.clear();
    try {
      const hab = HABILITATED_ROLES.includes(role) ? habilitationBody(habilitation) : null;
      const issued = unwrap(await api.POST("/users", { body: {
        email, display_name: name,
        membership: { tenant_id: tenantId, role: role as Role, ...(role === "officer" ? { force_id: forceId || null } : {}) },
        ...(hab ? { habilitation: hab } : {}),
      } }));
      props.onInvited(email, issued.enrolment);
      setEmail("");
      setName("");
      setHabilitation({});
    } catch (error) {
      errors.capture(error);
    }
  }

  return (
    <form noValidate class="inline-form" aria-labelledby="invite-title" onSubmit={(e) => void submit(e)}>
      <h2 id="invite-title">{t("users.inviteTitle")}</h2>
      <p class="hint">{t("users.inviteHint")}</p>
      {errors.form ? <p class="form-error" role="alert">{errors.form}</p> : null}
      <div class="form-grid">
        <Field id="invite-email" label={t("users.email")} error={errors.field("email")}>
          <input id="invite-email" type="email" value={email} onInput={(e) => setEmail(value(e))}
                 {...describedBy("invite-email", errors.field("email"))} />
        </Field>
        <Field id="invite-name" label={t("users.name")} error={errors.field("display_name")}>
          <input id="invite-name" value={name} onInput={(e) => setName(value(e))}
                 {...describedBy("invite-name", errors.field("display_name"))} />
        </Field>
        <MembershipFields prefix="invite" tenants={props.tenants} forces={props.forces} tenantId={tenantId} role={role}
                          forceId={forceId} errors={errors} fieldPrefix="membership."
                          onChange={(c) => {
                            if (c.tenantId !== undefined) setTenantId(c.tenantId);
                            if (c.role !== undefined) setRole(c.role);
                            if (c.forceId !== undefined) setForceId(c.forceId);
                          }} />
      </div>
      {HABILITATED_ROLES.includes(role) ? (
        <HabilitationFields prefix="invite" errors={errors} values={habilitation}
                            onChange={(n, v) => setHabilitation({ ...habilitation, [n]: v })} />
      ) : null}
      <button type="submit">{t("users.invite")}</button>
    </form>
  );
}

function UserPanel(props: { user: User; tenants: Tenant[]; forces: Force[]; tenantName: (id: string) => string;
                            onChanged: (message: string, enrolment?: EnrolmentLink) => void }) {
  const { user } = props;
  const [tenantId, setTenantId] = useState("");
  const [role, setRole] = useState<string>("operator");
  const [forceId, setForceId] = useState("");
  const [habilitation, setHabilitation] = useState<Record<string, string>>({
    agrement_number: user.habilitation.agrement_number ?? "", enquiry_date: user.habilitation.enquiry_date ?? "",
    expires_on: user.habilitation.expires_on ?? "", training_date: user.habilitation.training_date ?? "" });
  const membershipErrors = useFormErrors(["tenant_id", "role", "force_id", "membership.tenant_id",
                                           "membership.role", "membership.force_id"]);
  const habilitationErrors = useFormErrors(["habilitation", "habilitation.agrement_number",
                                            "habilitation.enquiry_date", "habilitation.expires_on",
                                            "habilitation.training_date"]);
  const actionErrors = useFormErrors([]);
  const path = { user_id: user.id };

  async function act(run: () => Promise<string | [string, EnrolmentLink]>): Promise<void> {
    actionErrors.clear();
    try {
      const done = await run();
      if (typeof done === "string") props.onChanged(done);
      else props.onChanged(done[0], done[1]);
    } catch (error) {
      actionErrors.capture(error);
    }
  }

  async function addRole(event: Event): Promise<void> {
    event.preventDefault();
    membershipErrors.clear();
    try {
      unwrap(await api.POST("/users/{user_id}/memberships", { params: { path }, body: {
        tenant_id: tenantId, role: role as Role, ...(role === "officer" ? { force_id: forceId || null } : {}) } }));
      props.onChanged(t("users.roleAdded", { name: user.display_name }));
    } catch (error) {
      membershipErrors.capture(error);
    }
  }

  async function saveHabilitation(event: Event): Promise<void> {
    event.preventDefault();
    habilitationErrors.clear();
    const body = habilitationBody(habilitation);
    if (!body) return;
    try {
      unwrap(await api.PATCH("/users/{user_id}", { params: { path }, body: { habilitation: body } }));
      props.onChanged(t("users.habilitationSaved", { name: user.display_name }));
    } catch (error) {
      habilitationErrors.capture(error);
    }
  }

  return (
    <section class="detail-panel" aria-labelledby="user-panel-title" data-user-panel={user.email}>
      <h2 id="user-panel-title">{t("users.panelTitle", { name: user.display_name })}</h2>
      {actionErrors.form ? <p class="form-error" role="alert">{actionErrors.form}</p> : null}
      <div class="actions">
        {user.status === "active" ? (
          <button type="button" class="danger" onClick={() => void act(async () => {
            unwrap(await api.PATCH("/users/{user_id}", { params: { path }, body: { status: "disabled" } }));
            return t("users.locked", { name: user.display_name });
          })}>{t("users.lock")}</button>
        ) : (
          <button type="button" onClick={() => void act(async () => {
            unwrap(await api.PATCH("/users/{user_id}", { params: { path }, body: { status: "active" } }));
            return t("users.reactivated", { name: user.display_name });
          })}>{t("users.reactivate")}</button>
        )}
        <button type="button" class="secondary" onClick={() => void act(async () => {
          unwrap(await api.POST("/users/{user_id}/unlock", { params: { path } }));
          return t("users.unlocked", { name: user.display_name });
        })}>{t("users.unlock")}</button>
        <button type="button" class="secondary" onClick={() => void act(async () => {
          unwrap(await api.POST("/users/{user_id}/revoke-sessions", { params: { path } }));
          return t("users.sessionsRevoked", { name: user.display_name });
        })}>{t("users.revokeSessions")}</button>
        <button type="button" class="secondary" onClick={() => void act(async () => {
          if (!globalThis.confirm(t("users.reenrolConfirm", { name: user.display_name }))) return "";
          const issued = unwrap(await api.POST("/users/{user_id}/reenrolment", { params: { path } }));
          return [t("users.reenrolled", { name: user.display_name }), issued.enrolment];
        })}>{t("users.reenrol")}</button>
      </div>
      <h3>{t("users.roles")}</h3>
      <ul>
        {user.memberships.map((m) => (
          <li key={m.id}>
            {tDynamic("role", m.role)} — {props.tenantName(m.tenant_id)}{" "}
            <button type="button" class="danger" onClick={() => void act(async () => {
              unwrap(await api.DELETE("/memberships/{membership_id}", { params: { path: { membership_id: m.id } } }));
              return t("users.roleRemoved", { name: user.display_name });
            })}>{t("users.removeRole", { role: tDynamic("role", m.role), tenant: props.tenantName(m.tenant_id) })}</button>
          </li>
        ))}
      </ul>
      <form noValidate class="inline-form" aria-labelledby="role-add-title" onSubmit={(e) => void addRole(e)}>
        <h3 id="role-add-title">{t("users.addRole")}</h3>
        {membershipErrors.form ? <p class="form-error" role="alert">{membershipErrors.form}</p> : null}
        <div class="form-grid">
          <MembershipFields prefix="member" tenants={props.tenants} forces={props.forces} tenantId={tenantId}
                            role={role} forceId={forceId} errors={membershipErrors} fieldPrefix=""
                            onChange={(c) => {
                              if (c.tenantId !== undefined) setTenantId(c.tenantId);
                              if (c.role !== undefined) setRole(c.role);
                              if (c.forceId !== undefined) setForceId(c.forceId);
                            }} />
        </div>
        <button type="submit">{t("users.addRoleSubmit")}</button>
      </form>
      <form noValidate class="inline-form" aria-labelledby="hab-title" onSubmit={(e) => void saveHabilitation(e)}>
        <h3 id="hab-title">{t("users.habilitation")}</h3>
        <p>{habilitationText(user.habilitation.expires_on)}</p>
        {habilitationErrors.form ? <p class="form-error" role="alert">{habilitationErrors.form}</p> : null}
        <HabilitationFields prefix="user" errors={habilitationErrors} values={habilitation}
                            onChange={(n, v) => setHabilitation({ ...habilitation, [n]: v })} />
        <button type="submit">{t("users.saveHabilitation")}</button>
      </form>
    </section>
  );
}
