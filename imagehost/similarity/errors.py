"""Exceptions of the similarity package (all ValueError subclasses, so callers map them to 4xx)."""


class SimilarityError(ValueError):
    """Base class for every error raised by ``imagehost.similarity``."""


class UnknownModel(SimilarityError):
    """No embedding model is registered under that name."""


class ModelUnavailable(SimilarityError):
    """The model's weights are missing or are not the pinned file."""


class InvalidVector(SimilarityError):
    """A vector or blob has the wrong dimension, dtype, length or values."""
