"""Video bridges: Jitsi rooms without credentials, Zoom meetings with a `ZoomCredentials`."""

from integrations.video import actions as _actions
from integrations.video.block import ZoomCredentials

__all__ = ["ZoomCredentials"]
del _actions
