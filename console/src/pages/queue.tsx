// The live alarm queue (filled in by the queue module).
import { t } from "../i18n/fr";

export function QueuePage() {
  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">{t("queue.title")}</h1>
    </section>
  );
}
