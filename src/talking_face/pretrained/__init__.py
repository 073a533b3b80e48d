"""Where the package's pretrained model lives, so that `image + audio -> mp4` works before any training:
`man_grid_voxceleb2_64.pt`, a model bundle from the shipped-model run (`kedro run --config ship.yml`: the
real-data recipe on GRID and VoxCeleb2 only, both CC BY 4.0), with its model card `MODEL_CARD.md` (the
figures the promotion gate accepted it on, its training people, the corpora's attributions and the weights'
terms). `talking-face generate`, the batch `generate` pipeline and `talking-face serve` use it when no
--model is given and the registry has no champion."""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "man_grid_voxceleb2_64.pt"
