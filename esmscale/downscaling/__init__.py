"""The downscaling task (filled in by the following commits)."""
