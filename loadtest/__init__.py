"""Locust scenarios and media bots. Lands with the load-test work."""
