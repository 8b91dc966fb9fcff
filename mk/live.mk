# Live video (live/): the gateway alone (make demo starts it with the platform), and its tests.
.PHONY: live test-live

live: $(STAMP)
	$(BIN)/python -m live

test-live: $(STAMP)
	$(BIN)/pytest -q tests/live tests/api/test_live_api.py

# Gateway-to-screen latency in Chromium and sub-stream viewers per 2 cores against per-viewer ffmpeg remuxes
# (bench/results/live.json).
BENCHES += bench-live
.PHONY: bench-live
bench-live: $(STAMP)
	$(BIN)/python -m bench.live
