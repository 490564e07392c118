"""The engine (private): kernel sets and backends, argument validation, memory estimates, the thread
policy, progress bars and the scores' constants. It imports nothing above it (docs/architecture.md)."""
