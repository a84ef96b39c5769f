"""bench/run's modules (standard library only); see bench/README.md."""
