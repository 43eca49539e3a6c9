"""Scoring perturbed images in batches: the engine that scores a stream of masks without
building every perturbed image at once, and the sliding windows of occlusion-style methods."""
