"""Published mixture presets as YAML data (loaded by schemas.mixtures via importlib.resources)."""
