# Alerts (alerts/): the alert engine process for the demo, and its benchmark.
BENCHES += bench-alerts
.PHONY: bench-alerts alerts

# The fault test first: its lost / duplicates counts (kill -9 of nats-server and of the alerts process, Postgres
# crash-restarted, under 10 000 events) go into bench/results/alerts.json beside the throughput figures.
bench-alerts: $(STAMP)
	$(BIN)/python -m pytest tests/alerts/test_faults.py -q
	$(BIN)/python -m bench.alerts

# The alert engine, outbox relay and escalation timers (make demo should start it beside the API).
alerts: $(STAMP)
	$(BIN)/python -m alerts
