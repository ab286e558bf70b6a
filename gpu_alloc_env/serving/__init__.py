"""The serving physics: hardware, models and platforms, and the engine that runs one replica."""
