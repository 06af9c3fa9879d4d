//! Traffic routers (`TrafficRouter`), one file per provider, plus a fake for tests.
