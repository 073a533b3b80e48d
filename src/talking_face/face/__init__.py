"""dlib face detection, 68-point landmarks, face tracks, crops and keypoint heatmaps."""
