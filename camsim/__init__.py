"""Camera simulator: real RTSP cameras on loopback serving real footage, for tests, benchmarks and the demo."""
