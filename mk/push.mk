# Mobile push (mobile_push/): its benchmark, the push process and the local FCM endpoint for the demo.
BENCHES += bench-push
.PHONY: bench-push push fcm-local

bench-push: $(STAMP)
	$(BIN)/python -m bench.push

# The dispatcher alone, against the project's local FCM endpoint started in the same process on port 9099.
push: $(STAMP)
	VIGIE_PUSH_LOCAL_ENDPOINT_PORT=9099 $(BIN)/python -m mobile_push

# The local FCM endpoint alone (writes its service account under var/push on first start).
fcm-local: $(STAMP)
	$(BIN)/python -m mobile_push.fcm_endpoint --port 9099 --service-account var/push/service-account.json
