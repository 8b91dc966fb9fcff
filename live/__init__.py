"""The live-video gateway: cameras' RTSP streams remuxed (no re-encode) into fragmented MP4 over WebSocket."""
