"""The full SuperCalo chain in one checkpoint: any coarse-shower model plus a trained up-sampler.

``combine`` writes a ``supercalo`` checkpoint whose header embeds the coarse checkpoint's family, hyper-parameters,
fitted preprocessing and geometry, and whose weights are the up-sampler's plus the coarse model's under
``coarse.``; its generation defaults are the coarse model's. ``caloforge generate`` then needs only that file:

    python -m caloforge.models.supercalo.chain COARSE.pt UPSAMPLER.pt --out chain.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from caloforge.contract import Checkpoint, build_model, load_checkpoint, save_checkpoint
from caloforge.errors import CaloforgeError

#: what of a coarse checkpoint's header the chain needs to rebuild the coarse model (``model.build_coarse``)
_COARSE_KEYS = ("family", "model_config", "fitted", "geometry")


def combine(coarse_path: str | Path, upsampler_path: str | Path) -> Checkpoint:
    """The chain checkpoint of a coarse-model checkpoint and a SuperCalo (up-sampler) checkpoint."""
    coarse, upsampler = load_checkpoint(coarse_path), load_checkpoint(upsampler_path)
    if upsampler.header["family"] != "supercalo" or upsampler.header["fitted"].get("coarse"):
        raise CaloforgeError(f"{upsampler_path}: not a SuperCalo up-sampler checkpoint (family "
                             f"{upsampler.header['family']}, or already a chain)")
    fitted = {**upsampler.header["fitted"], "coarse": {key: coarse.header[key] for key in _COARSE_KEYS}}
    weights = dict(upsampler.ema if upsampler.ema is not None else upsampler.model)
    coarse_weights = coarse.ema if coarse.ema is not None else coarse.model
    weights.update({f"coarse.{name}": value for name, value in coarse_weights.items()})
    header = {**upsampler.header, "fitted": fitted, "sample_defaults": coarse.header.get("sample_defaults", {}),
              "chain": {"coarse": str(coarse_path), "upsampler": str(upsampler_path),
                        "coarse_run": coarse.header.get("run")}}
    chain = Checkpoint(header=header, model=weights)
    build_model(chain)  # refuses a coarse model of the wrong geometry now rather than at generation
    return chain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m caloforge.models.supercalo.chain",
                                     description="Combine a coarse-model checkpoint and a SuperCalo up-sampler "
                                                 "checkpoint into one chain checkpoint for 'caloforge generate'.")
    parser.add_argument("coarse", type=Path)
    parser.add_argument("upsampler", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        save_checkpoint(args.out, combine(args.coarse, args.upsampler))
    except CaloforgeError as err:
        parser.exit(2, f"caloforge: error: {err}\n")
    print(args.out)


if __name__ == "__main__":
    main()
