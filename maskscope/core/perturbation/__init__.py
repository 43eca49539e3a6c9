"""Perturbing an image: masks and their upsampling, fillers (blur, constants, noise, inpainters)
and the blend ``x·m + f·(1 − m)``, the smooth-max mask generator and jitter."""
