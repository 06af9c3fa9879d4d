//! Metric providers (`MetricProvider`), one file per backend, plus a fake for tests.
