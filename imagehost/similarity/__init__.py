"""Similar pictures: embeddings, vector blobs, a FAISS index and near-duplicates.

No Django here: the site stores the vectors (``vector_to_blob``) next to each picture, builds
a ``SimilarityIndex`` from them and asks it for neighbours within the ids a user may see.

    >>> e = embed_token(picture.token)            # Embedding(model, vector)
    >>> blob = vector_to_blob(e.vector)           # 2,560 bytes for the default model
    >>> index = SimilarityIndex.build(rows, get_spec(e.model).dim, model=e.model)
    >>> index.search(e.vector, k=10, allowed_ids=visible_ids, exclude_ids=[picture.id])
"""

from .duplicates import NEAR_DUPLICATE_THRESHOLD, find_near_duplicates, is_near_duplicate
from .embedding import (
    DEFAULT_MODEL,
    REGISTRY,
    Embedding,
    EmbeddingModelSpec,
    available_models,
    classify,
    embed_image,
    embed_images,
    embed_token,
    get_spec,
    load_model,
)
from .errors import InvalidVector, ModelUnavailable, SimilarityError, UnknownModel
from .index import FLAT_MAX, MAX_K, NPROBE, SimilarityIndex
from .live import LiveIndex
from .vectors import blob_to_vector, check_vectors, vector_to_blob

__all__ = [
    "DEFAULT_MODEL", "FLAT_MAX", "MAX_K", "NEAR_DUPLICATE_THRESHOLD", "NPROBE", "REGISTRY", "Embedding",
    "EmbeddingModelSpec", "InvalidVector", "LiveIndex", "ModelUnavailable", "SimilarityError", "SimilarityIndex",
    "UnknownModel", "available_models", "blob_to_vector", "check_vectors", "classify", "embed_image",
    "embed_images", "embed_token", "find_near_duplicates", "get_spec", "is_near_duplicate", "load_model",
    "vector_to_blob",
]  # fmt: skip
