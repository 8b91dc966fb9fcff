"""Recording and evidence: 24/7 recording to the object store, retention with proof, clips, legal holds, exports."""
