# Alerts (alerts/): the alert engine process for the demo, and its benchmark.
BENCHES += bench-alerts
.PHONY: bench-alerts alerts

bench-alerts: $(STAMP)
	$(BIN)/python -m bench.alerts

# The alert engine, outbox relay and escalation timers (make demo should start it beside the API).
alerts: $(STAMP)
	$(BIN)/python -m alerts
