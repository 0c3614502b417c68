"""Safety filter configurations, one YAML per robot."""
