"""The alert intake service (`firelane serve`): `app` (the ASGI app), `config` (the YAML file),
`responder` (runbook matching and the fast path), `serve` (the command). Submodules are imported
where used, so the CLI's authoring commands never import Prefect."""
