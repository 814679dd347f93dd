"""Connectors: one adapter per external system, speaking its API and returning raw records."""
