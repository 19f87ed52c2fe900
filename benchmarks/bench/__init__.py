"""The benchmark's own app: its models, views and template."""
