"""The Time Flies networks. Imports only torch: no files, printing or device choice."""
from .config import GeneratorConfig
from .discriminator import VideoDiscriminator
from .encoders import VGGEncoder, VideoEncoder
from .generator import Generator, ImageCache
from .noise import noise_frames

__all__ = ["Generator", "GeneratorConfig", "ImageCache", "VGGEncoder", "VideoDiscriminator",
           "VideoEncoder", "noise_frames"]
