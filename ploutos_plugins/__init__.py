"""Ploutos's built-in plugins, installed as ``ploutos_plugins`` and declared as entry points."""
