"""Write the version 2 golden tokens in this folder: klt-ctx (kind 5) and klt-rc (kind 3).
Run ONCE, when a payload kind is added; never regenerate an existing case (the point of the
files is that tokens written by an older release keep decoding the same way).

    EMMM_MODEL_DIR=../shared/models .venv/bin/python tests/codec/golden_v2/make_golden.py

Writes, per case: NAME.token, NAME.png (its reference decode) and, in golden.json, what
codec.inspect() reports plus the sha256 of the decoded integer symbols (bit-exact on every
CPU: the entropy decoding is integer only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root

import numpy as np  # noqa: E402

import codec  # noqa: E402
from codec import core, encode_v2  # noqa: E402
from codec.models import registry  # noqa: E402
from tests.codec.imagegen import photo  # noqa: E402


def klt_rc_token(image) -> str:
    spec = registry.get_spec("taef2")
    return encode_v2.encode_klt(image, spec, codec.load_model("taef2"), core.transform_for(spec), None,
                                next_size=core.next_coded_size, image_to_tensor=core.image_to_tensor)  # fmt: skip


def symbols_sha256(text: str) -> str:
    """sha256 of the coefficients divided by the step (integers), as int64 little-endian."""
    from codec import klt_ctx, klt_rc, token

    header, payload = token.unpack(token.from_text(text))
    spec = registry.spec_for_code(header.model_code)
    if header.payload_kind == encode_v2.KLT_CTX:
        coeffs = klt_ctx.unpack(payload, header.latent_shape, core.context_for(spec))
    else:
        coeffs = klt_rc.unpack(payload, header.latent_shape)
    step = int.from_bytes(payload[:2], "big") / 4096
    return hashlib.sha256(np.rint(coeffs / step).astype("<i8").tobytes()).hexdigest()


def cases() -> dict[str, str]:
    return {
        "ctx-photo-96x64": codec.encode(photo(96, 64, seed=11), kind="vae-v2").token,
        "ctx-photo-120x72": codec.encode(photo(120, 72, seed=12), kind="vae-v2").token,
        "ctx-photo-160x120-max1200": codec.encode(photo(160, 120, seed=13), kind="vae-v2", max_chars=1200).token,
        "rc-photo-96x64": klt_rc_token(photo(96, 64, seed=14)),
    }


def main() -> None:
    golden = {}
    for name, text in cases().items():
        (HERE / f"{name}.token").write_text(text + "\n")
        codec.decode(text).save(HERE / f"{name}.png", optimize=True)
        info = dataclasses.asdict(codec.inspect(text))
        info["latent_shape"] = list(info["latent_shape"])
        golden[name] = {"inspect": info, "symbols_sha256": symbols_sha256(text)}
        print(f"{name}: {info['chars']} chars, {info['payload_kind']}, coded {info['coded_width']}x{info['coded_height']}")
    (HERE / "golden.json").write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
