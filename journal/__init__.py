"""Access journal: who did what, to which camera and time range, why and for whom; append-only, hash-chained."""
