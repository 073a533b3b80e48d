"""The model that ships with the package, so `image + audio -> mp4` works before any training: the MAN
generator with the composite head, trained by the real-data run (`kedro run --config real.yml`) on GRID
speakers s1 and s4 (CC BY 4.0). Its model card, with the figures it was accepted on and GRID's attribution,
is `MODEL_CARD.md` beside it. `talking-face generate` and `serve` use it when no --model is given and the
registry has no champion."""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "grid_man_64.pt"
SHIPPED_MODEL_CARD = SHIPPED_MODEL.parent / "MODEL_CARD.md"
