"""Video bridges: Jitsi rooms without credentials, Zoom meetings with a `ZoomCredentials`."""

from integrations.video import actions as _actions

__all__: list[str] = []
del _actions
