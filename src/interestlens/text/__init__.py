"""Pretrained sentence encoders, their on-disk cache, and the text of items.

:class:`Encoder` turns texts into unit-length vectors with the bundled
all-MiniLM-L6-v2, any local sentence-transformers model, or an OpenAI-compatible
embeddings endpoint; :class:`EmbeddingCache` keeps those vectors on disk;
:func:`compose_item_text` builds the text of each item from its fields and user tags.
"""

from interestlens.text.cache import EmbeddingCache, text_hash
from interestlens.text.compose import compose_item_text
from interestlens.text.encoder import Encoder
from interestlens.text.endpoint import EndpointClient, EndpointError

__all__ = [
    "EmbeddingCache",
    "Encoder",
    "EndpointClient",
    "EndpointError",
    "compose_item_text",
    "text_hash",
]
