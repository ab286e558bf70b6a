"""Scripts behind the ``gpu-alloc`` command: comparisons of allocation policies."""
