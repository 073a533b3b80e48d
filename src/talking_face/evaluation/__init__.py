"""The paper's metrics (SSIM, PSNR, CPBD, LMD, blinks, identity distance, sync, WER) for one clip at a time."""
