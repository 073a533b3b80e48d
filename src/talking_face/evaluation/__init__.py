"""The paper's metrics (SSIM, PSNR, CPBD, LMD, blinks, identity distance, sync, WER) for one clip at a time;
the evaluation loop over test clips (`run`), per-split summaries (`summary`) and the report (`report`)."""
