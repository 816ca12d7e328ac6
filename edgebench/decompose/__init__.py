"""Filter decomposition: ``edgebench decompose`` (spatial and channel SVD, ranks chosen by measured latency)."""
