"""The alert intake HTTP service (`firelane serve`): `app` (the ASGI app), `config` (the YAML
file), `bodies`, `committer`, `slack_interactions` and `metrics`. Submodules are imported where
used, so the CLI's authoring commands never import Prefect."""
