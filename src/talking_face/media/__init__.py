"""PyAV decode, encode and mux: the only package that touches codecs."""

from talking_face.media.errors import MediaError

__all__ = ["MediaError"]
