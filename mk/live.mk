# Live video (live/): the gateway alone (make demo starts it with the platform), and its tests.
.PHONY: live test-live

live: $(STAMP)
	$(BIN)/python -m live

test-live: $(STAMP)
	$(BIN)/pytest -q tests/live tests/api/test_live_api.py
