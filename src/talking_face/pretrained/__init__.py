"""Where the package's pretrained model lives, so that `image + audio -> mp4` works before any training:
`grid_man_64.pt` (a model bundle from the real-data run, `kedro run --config real.yml`, trained on GRID
speakers s1 and s4, CC BY 4.0) with its model card `MODEL_CARD.md` (the figures it was accepted on and
GRID's attribution). `talking-face generate` and `serve` use it when no --model is given and the registry
has no champion. None ships yet: a model ships here once the real-data model beats the still photo on
unseen people (see the README's real-data run)."""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "grid_man_64.pt"
