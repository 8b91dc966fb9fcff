// The shell: sign-in until a session exists, then the navigation and the page the hash names.
import { useEffect, useState } from "preact/hooks";
import { currentSession, onSessionChange, refreshSession, signOut, type Session } from "./auth/session";
import { t, tDynamic } from "./i18n/fr";
import { PAGES, pagesFor } from "./pages";
import { ENROLMENT_PATH, EnrolmentPage } from "./pages/enrolment/enrolment";
import { SignInPage } from "./pages/signin";
import { navigate, useRoute } from "./router";

export function App() {
  const [session, setSession] = useState<Session | null>(currentSession());
  const [restoring, setRestoring] = useState(true);
  const path = useRoute();

  useEffect(() => {
    const stop = onSessionChange(setSession);
    // A reload keeps the refresh cookie: try it once before asking for the password again.
    void refreshSession().finally(() => setRestoring(false));
    return stop;
  }, []);

  // An enrolment link opens without a session (the person has no credentials yet, or is replacing them).
  if (path === ENROLMENT_PATH) return <EnrolmentPage />;
  if (restoring && !session) return <main id="contenu" class="centered" aria-busy="true" />;
  if (!session) return <SignInPage />;

  const allowed = pagesFor(session.role);
  const page = PAGES.find((candidate) => candidate.path === path);
  if (!page && allowed[0]) {
    navigate(allowed[0].path);
    return null;
  }
  const Page = page && allowed.includes(page) ? page.component : null;
  return (
    <>
      <a class="skip" href="#contenu">
        {t("app.skip")}
      </a>
      <header class="topbar">
        <span class="brand">Vigie</span>
        <nav aria-label={t("nav.label")}>
          <ul>
            {allowed.map((item) => (
              <li key={item.path}>
                <a href={`#${item.path}`} aria-current={item.path === path ? "page" : undefined}>
                  {t(item.label)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">{t("nav.signedInAs", { role: tDynamic("role", session.role) })}</span>
        <button type="button" class="secondary" onClick={() => void signOut()}>
          {t("nav.signout")}
        </button>
      </header>
      <main id="contenu" tabIndex={-1}>
        {Page ? <Page /> : <p role="alert">{page ? t("page.forbidden") : t("page.notFound")}</p>}
      </main>
    </>
  );
}
