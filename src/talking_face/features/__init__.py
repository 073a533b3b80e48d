"""Per-clip feature extraction: face crops, landmarks, heatmaps, flow, mel, MFCC, pitch and energy."""
