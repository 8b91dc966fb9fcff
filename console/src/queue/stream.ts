// The live alarm queue's stream: Server-Sent Events over fetch (EventSource cannot send the bearer), resumed after
// the last event seen (Last-Event-ID) whenever it drops, and reopened with a fresh token when the server ends it.
import { EventStreamContentType, fetchEventSource } from "@microsoft/fetch-event-source";
import { currentSession, refreshSession } from "../auth/session";

export interface StreamHandlers {
  onEvent(kind: string, data: unknown, id: string): void;
  onStatus(status: "live" | "reconnecting"): void;
  /** The server follows the queue from here on (its `ready`, at every connection). */
  onReady?(): void;
}

class Retry extends Error {}
class Stop extends Error {}

/** Follows the queue until `signal` aborts. `lastEventId` resumes after an event already seen. */
export function followQueue(handlers: StreamHandlers, signal: AbortSignal, lastEventId: string | null = null): void {
  let lastId = lastEventId;
  const open = async (): Promise<void> => {
    while (!signal.aborted) {
      let session = currentSession() ?? (await refreshSession());
      if (!session) return;
      const headers: Record<string, string> = { Authorization: `Bearer ${session.accessToken}`, "X-Vigie-Console": "1" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      try {
        await fetchEventSource("/alerts/stream", {
          headers,
          signal,
          openWhenHidden: true,
          async onopen(response) {
            const type = response.headers.get("content-type") ?? "";
            if (response.ok && type.startsWith(EventStreamContentType)) {
              handlers.onStatus("live");
              return;
            }
            if (response.status === 401) {
              session = await refreshSession();
              if (!session) throw new Stop();
            }
            throw new Retry();
          },
          onmessage(message) {
            if (message.id) lastId = message.id;
            if (message.event === "end") throw new Retry();
            if (message.event === "ready") {
              handlers.onReady?.();
              return;
            }
            if (!message.event) return;
            handlers.onEvent(message.event, JSON.parse(message.data), message.id);
          },
          onclose() {
            throw new Retry();
          },
          onerror(error) {
            // Rethrown: the loop below decides, with a fresh token and the last id seen.
            throw error;
          },
        });
        return;
      } catch (error) {
        if (error instanceof Stop || signal.aborted) return;
        handlers.onStatus("reconnecting");
        if (!(error instanceof Retry)) await new Promise((resolve) => setTimeout(resolve, 2_000));
        else await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };
  void open();
}
