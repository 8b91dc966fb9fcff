"""Camera health: what the recorders and the detector see of each camera, its state, history and maintenance."""
