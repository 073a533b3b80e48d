"""The single generation path (image + audio -> frames -> mp4) shared by evaluation, the CLI and MLflow serving."""
