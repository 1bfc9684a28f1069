"""Incident records: `report` (building and rendering the timeline report) and
`timeline_sources` (the vendors' side of the timeline)."""

__all__: list[str] = []
