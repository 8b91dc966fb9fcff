"""Alert to screen in the operator console: from the frame that fired the rule to the alert drawn in the live queue.

The platform runs as `vigie demo` runs it (simulated cameras, recorder, detector, alerts, push, live gateway, API),
alerts are raised by the simulated footage, and an operator's queue is open in Debian's Chromium. For each new alert:

* `first_seen_at`: the capture time of the frame that made the rule fire (the detector stamps the event with it);
* the baseline, `alert_to_bus`: when the alert's `raised` event reaches a subscriber of the ALERTS stream in this
  process (everything up to the bus: decoding, detection, rules, the alert engine, its outbox relay);
* `alert_to_screen`: the first animation frame after the alert's row entered the page (a MutationObserver, then
  requestAnimationFrame), on the browser's clock (the same machine's).

`python -m bench.console [--seconds 240]` writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from bench.common import write_result
from cli.seed import DEMO_PASSWORD
from core.bus import Bus
from core.settings import Settings
from tests.console.platform import CHROMIUM, DemoPlatform

OPERATOR = "operateur1@valdoise.demo"

# Records when each queue row is first drawn, and the frame time the row carries.
OBSERVER = """() => {
  window.__drawn = {};
  const known = new Set([...document.querySelectorAll('.queue-item')].map(i => i.dataset.alertId));
  const note = (item) => {
    const id = item.dataset.alertId;
    if (!id || known.has(id) || window.__drawn[id]) return;
    known.add(id);
    requestAnimationFrame(() => {
      window.__drawn[id] = {drawn_ms: performance.timeOrigin + performance.now(), first_seen: item.dataset.firstSeen};
    });
  };
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      if (!(node instanceof Element)) continue;
      if (node.matches('.queue-item')) note(node);
      node.querySelectorAll('.queue-item').forEach(note);
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure(platform: DemoPlatform, seconds: float) -> dict[str, Any]:
    os.environ.update(platform.env)
    bus = await Bus.connect_as(Settings(), "api", name="bench-console")
    on_bus: dict[str, tuple[float, str]] = {}

    async def raised(msg: Any) -> None:
        if str(msg.subject).endswith(".raised"):
            event = json.loads(bytes(msg.data))
            first_seen = event.get("first_seen_at") or event["occurred_at"]
            on_bus.setdefault(event["alert_id"], (time.time() * 1000, first_seen))

    following = await bus.follow("alerts.>", "ALERTS", raised)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.goto(f"{platform.api_url}/console/")
            await page.fill("#email", OPERATOR)
            await page.fill("#password", DEMO_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#code")
            await page.fill("#code", platform.totp(OPERATOR))
            await page.click("button[type=submit]")
            await page.wait_for_selector("[data-stream='live']", timeout=30_000)
            await page.evaluate(OBSERVER)
            await asyncio.sleep(seconds)
            drawn: dict[str, dict[str, Any]] = await page.evaluate("window.__drawn")
            shown = await page.eval_on_selector_all(".queue-item", "items => items.map(i => i.dataset.alertId)")
            status = await page.eval_on_selector("[data-stream]", "e => e.dataset.stream")
            print(f"queue shows {len(shown)} alerts, stream {status}; drawn during the run: {len(drawn)}; "
                  f"raised on the bus: {len(on_bus)}, of which shown: {len(set(on_bus) & set(shown))}", flush=True)
            await browser.close()
    finally:
        await following.stop()
        await bus.close()

    def frame_ms(iso: str) -> float:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000

    to_screen = [row["drawn_ms"] - frame_ms(row["first_seen"]) for row in drawn.values() if row.get("first_seen")]
    to_bus = [at - frame_ms(first) for alert, (at, first) in on_bus.items() if alert in drawn]
    screen_after_bus = [drawn[a]["drawn_ms"] - on_bus[a][0] for a in drawn if a in on_bus]
    if not to_screen:
        raise SystemExit(f"no new alert was drawn during the run ({len(on_bus)} raised on the bus): nothing measured")
    return {
        "alerts_measured": len(to_screen),
        "alerts_raised_on_bus": len(on_bus),
        "seconds": seconds,
        "alert_to_screen_p50_ms": round(statistics.median(to_screen), 1),
        "alert_to_screen_p95_ms": round(percentile(to_screen, 0.95), 1),
        "alert_to_screen_max_ms": round(max(to_screen), 1),
        "baseline_alert_to_bus_p50_ms": round(statistics.median(to_bus), 1) if to_bus else None,
        "baseline_alert_to_bus_p95_ms": round(percentile(to_bus, 0.95), 1) if to_bus else None,
        "bus_to_screen_p50_ms": round(statistics.median(screen_after_bus), 1) if screen_after_bus else None,
        "bus_to_screen_p95_ms": round(percentile(screen_after_bus, 0.95), 1) if screen_after_bus else None,
        "goal_alert_to_screen_p95_ms": 2000,
        "browser": "Debian chromium (headless), Playwright",
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="how long the queue is watched")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as work:
        platform = DemoPlatform(Path(work))
        platform.start()
        try:
            figures = asyncio.run(measure(platform, args.seconds))
        finally:
            platform.stop()
    path = write_result("console", figures)
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
