// A live viewing: a ticket from the API (journaled with the motive), the gateway's WebSocket, its fMP4 appended to a
// MediaSource. The gateway keeps the socket open while the camera is down and sends a fresh init segment when it is
// back; a socket that closes for a passing reason is reopened with a new ticket (tickets are single use).

export type LiveStream = "sub" | "main";

export interface LiveGrant {
  ticket: string;
  url: string;
}

export interface LiveStatus {
  state: "connecting" | "online" | "offline" | "codec_unsupported" | "refused";
  reason?: string;
  codec?: string;
  since?: string;
  transcoded?: boolean;
}

// Close codes after which asking again cannot help (docs/live.md): wrong camera or stream, gone, H.265, cap.
const FINAL_CLOSES = new Set([4403, 4404, 4415, 4429]);
const RECONNECT_MS = 2000;
const KEEP_BUFFER_S = 20;
const MAX_LAG_S = 1.5;

export class LivePlayer {
  private socket: WebSocket | null = null;
  private source: MediaSource | null = null;
  private buffer: SourceBuffer | null = null;
  private queue: ArrayBuffer[] = [];
  private objectUrl: string | null = null;
  private stopped = false;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly grant: () => Promise<LiveGrant>,
    private readonly onStatus: (status: LiveStatus) => void,
  ) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.close(1000, "viewer closed");
    this.socket = null;
    this.resetMedia();
  }

  private async connect(): Promise<void> {
    this.onStatus({ state: "connecting" });
    let grant: LiveGrant;
    try {
      grant = await this.grant();
    } catch (error) {
      this.onStatus({ state: "refused", reason: error instanceof Error ? error.message : String(error) });
      return;
    }
    if (this.stopped) return;
    const socket = new WebSocket(grant.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ ticket: grant.ticket }));
    socket.onmessage = ({ data }) => {
      if (typeof data !== "string") {
        this.queue.push(data as ArrayBuffer);
        this.feed();
        return;
      }
      const message = JSON.parse(data) as Record<string, unknown>;
      if (message["state"] === "online") {
        this.openMedia(String(message["mime"]));
        this.onStatus({ state: "online", codec: String(message["codec"] ?? ""),
                        transcoded: Boolean(message["transcoded"]) });
      } else if (message["state"] === "offline") {
        this.onStatus({ state: "offline", reason: String(message["reason"] ?? ""),
                        since: String(message["since"] ?? "") });
      } else if (message["state"] === "codec_unsupported") {
        this.onStatus({ state: "codec_unsupported", codec: String(message["codec"] ?? ""),
                        reason: String(message["reason"] ?? "") });
      } else if (message["type"] === "error") {
        this.onStatus({ state: "refused", reason: String(message["reason"] ?? "") });
      }
    };
    socket.onclose = ({ code, reason }) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (FINAL_CLOSES.has(code)) {
        if (code !== 4415) this.onStatus({ state: "refused", reason: reason || String(code) });
        return;
      }
      // The gateway stopping, a lost network, an expired session refreshed by the client: a new ticket.
      this.onStatus({ state: "offline", reason: reason || String(code) });
      this.retry = setTimeout(() => void this.connect(), RECONNECT_MS);
    };
  }

  private resetMedia(): void {
    this.buffer = null;
    this.queue = [];
    this.source = null;
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  /** A fresh MediaSource for each init segment: the camera may come back with another resolution or profile. */
  private openMedia(mime: string): void {
    this.resetMedia();
    const source = new MediaSource();
    this.source = source;
    this.objectUrl = URL.createObjectURL(source);
    this.video.src = this.objectUrl;
    source.addEventListener("sourceopen", () => {
      if (this.source !== source) return;
      const buffer = source.addSourceBuffer(mime);
      buffer.mode = "sequence";
      buffer.addEventListener("updateend", () => {
        this.keepNearTheLiveEdge(buffer);
        this.feed();
      });
      this.buffer = buffer;
      this.feed();
    }, { once: true });
  }

  private feed(): void {
    const buffer = this.buffer;
    if (!buffer || buffer.updating || this.queue.length === 0) return;
    const next = this.queue.shift();
    if (!next) return;
    try {
      buffer.appendBuffer(next);
    } catch {
      // A full buffer: drop what was played and try again on the next fragment.
      this.queue = [];
    }
  }

  private keepNearTheLiveEdge(buffer: SourceBuffer): void {
    if (buffer.buffered.length === 0) return;
    const end = buffer.buffered.end(buffer.buffered.length - 1);
    const start = buffer.buffered.start(0);
    if (end - this.video.currentTime > MAX_LAG_S) this.video.currentTime = Math.max(start, end - 0.3);
    if (this.video.paused) void this.video.play().catch(() => undefined);
    if (end - start > KEEP_BUFFER_S && !buffer.updating) buffer.remove(start, end - KEEP_BUFFER_S / 2);
  }
}
