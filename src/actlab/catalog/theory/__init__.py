"""What theory says about an activation before any training, in one home: `meanfield` (signal propagation
through wide random networks: the variance and correlation maps, their fixed points, χ₁, the depth scales,
the edge of chaos, gradient ratios) and `gelu` (the GELU approximations' errors, in closed form). What
theory predicts for a stored run lives in `actlab.analysis.predictions`, built on these."""
