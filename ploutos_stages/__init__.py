"""Built-in stage definitions (TOML package data), served by the ``stages`` plugin."""
