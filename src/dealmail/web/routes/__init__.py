"""Route modules, one per audience; each defines install(app) and is picked up by the factory."""
