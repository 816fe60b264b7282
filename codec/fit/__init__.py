"""Scripts that fit the codec's small fixed parameters (never on Kodak, the benchmark set)."""
