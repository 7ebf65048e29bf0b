"""Load benchmarks and data seeding (see bench/README.md)."""
