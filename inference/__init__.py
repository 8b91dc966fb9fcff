"""Detection: camera streams in, tracked objects and analytics events out (portable and DeepStream backends)."""
