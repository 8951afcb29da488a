"""The project's PostgreSQL backend (settings ENGINE "adplatform.db"): Django's, with a
health check that trusts a connection used cleanly within the last second."""
