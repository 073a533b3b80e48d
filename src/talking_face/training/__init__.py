"""Training: the torch dataset over feature files and the Ray Train loops (predictors, MAN GAN)."""
