"""golgi's layers, one module each; their constructors are re-exported from ``golgi``."""
