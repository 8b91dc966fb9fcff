// The console's pages: one module each, listed here in navigation order. A page added by another feature (the live
// wall, playback, the camera wall) is one more entry.
import type { ComponentType } from "preact";
import type { MessageKey } from "../i18n/fr";
import { AuditJournalPage } from "./auditor/journal";
import { AuditRegistersPage } from "./auditor/registers";
import { AuditVerificationPage } from "./auditor/verification";
import { CamerasAdminPage } from "./admin/cameras-admin";
import { SitesMapPage } from "./admin/sites-map";
import { TenantsPage } from "./admin/tenants";
import { CamerasPage } from "./cameras";
import { ForcesPage } from "./forces/forces";
import { UsersPage } from "./users/users";
import { ZonesPage } from "./zones/zones";
import { LivePage } from "./live";
import { LogbookPage } from "./logbook";
import { MayorAccessesPage } from "./mayor/accesses";
import { MayorBillingPage } from "./mayor/billing";
import { MayorDashboardPage } from "./mayor/dashboard";
import { PlaybackPage } from "./playback";
import { QueuePage } from "./queue";
import { OPERATORS, SUPERVISORS } from "./roles";
import { SupervisorPage } from "./supervisor";

export interface PageDefinition {
  path: string;
  label: MessageKey;
  component: ComponentType;
  /** The roles that see the page in the navigation and may open it (the API checks again). */
  roles: readonly string[];
}

const AUDITORS = ["auditor", "department_admin"] as const;

export const PAGES: readonly PageDefinition[] = [
  // First for the mayor: the page a tenant admin lands on.
  { path: "/commune", label: "nav.mayorDashboard", component: MayorDashboardPage, roles: ["tenant_admin"] },
  { path: "/file", label: "nav.queue", component: QueuePage, roles: OPERATORS },
  { path: "/main-courante", label: "nav.logbook", component: LogbookPage, roles: [...OPERATORS, "auditor"] },
  { path: "/supervision", label: "nav.supervisor", component: SupervisorPage, roles: SUPERVISORS },
  { path: "/cameras", label: "nav.cameras", component: CamerasPage,
    roles: [...OPERATORS, "auditor", "tenant_admin"] },
  { path: "/direct", label: "nav.live", component: LivePage, roles: OPERATORS },
  { path: "/relecture", label: "nav.playback", component: PlaybackPage, roles: OPERATORS },
  { path: "/audit/journal", label: "nav.auditJournal", component: AuditJournalPage, roles: AUDITORS },
  { path: "/audit/integrite", label: "nav.auditVerification", component: AuditVerificationPage, roles: AUDITORS },
  { path: "/audit/registres", label: "nav.auditRegisters", component: AuditRegistersPage, roles: AUDITORS },
  { path: "/collectivites", label: "nav.tenants", component: TenantsPage, roles: ["department_admin", "tenant_admin"] },
  { path: "/sites-cameras", label: "nav.camerasAdmin", component: CamerasAdminPage,
    roles: ["department_admin", "tenant_admin"] },
  { path: "/carte", label: "nav.sitesMap", component: SitesMapPage, roles: ["department_admin", "tenant_admin"] },
  { path: "/admin/zones", label: "nav.zones", component: ZonesPage, roles: ["department_admin"] },
  { path: "/admin/utilisateurs", label: "nav.users", component: UsersPage, roles: ["department_admin"] },
  { path: "/admin/forces", label: "nav.forces", component: ForcesPage, roles: ["department_admin"] },
  { path: "/factures", label: "nav.mayorBilling", component: MayorBillingPage, roles: ["tenant_admin", "finance"] },
  { path: "/acces-images", label: "nav.mayorAccesses", component: MayorAccessesPage, roles: ["tenant_admin"] },
];

export function pagesFor(role: string): PageDefinition[] {
  return PAGES.filter((page) => page.roles.includes(role));
}
