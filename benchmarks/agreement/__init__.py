"""Agreement with reference and peer code: the same photos and settings on both sides, how alike the results are."""
