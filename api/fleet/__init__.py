"""The device fleet over HTTP: the registry, commands, dead letters."""
