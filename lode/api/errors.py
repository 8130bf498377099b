"""REST: recorded errors and alerts (the same documents as `lode errors --json` and `lode alerts --json`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from lode.api.routes import errors
from lode.api.security import require_unscoped
from lode.errorlog import ack_alert, list_alerts, list_errors

# error context may name any repository's paths: scoped keys get a 403
router = APIRouter(prefix="/v1", tags=["errors"], dependencies=[Depends(require_unscoped)])


def _db(request: Request) -> Any:
    return request.app.state.lode.db


@router.get("/errors", summary="Recorded errors", responses=errors(503))
def get_errors(
    request: Request,
    since: Annotated[float, Query(gt=0, le=8760, description="Errors seen within this many hours.",
                                  examples=[1.5])] = 24.0,
    severity: Annotated[Literal["warning", "error", "critical"] | None,
                        Query(description="Only errors of this severity.", examples=["critical"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Errors at most.", examples=[20])] = 100,
) -> dict[str, Any]:
    """Handled errors, newest first, with the 24-hour summary and the hourly rate."""
    return list_errors(_db(request), since_hours=since, severity=severity, limit=limit)


@router.get("/alerts", summary="Alerts", responses=errors(503))
def get_alerts(
    request: Request,
    include_acknowledged: Annotated[bool, Query(alias="all", description="Include acknowledged alerts.",
                                                examples=[True])] = False,
    limit: Annotated[int, Query(ge=1, le=1000, description="Alerts at most.", examples=[20])] = 100,
) -> dict[str, Any]:
    """Open alerts (all alerts with all=true), newest first."""
    return list_alerts(_db(request), include_acknowledged=include_acknowledged, limit=limit)


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert", responses=errors(404, 503))
def post_ack(request: Request, alert_id: Annotated[int, Path(ge=1, le=2**62, description="The alert's id, as GET "
                                                          "/v1/alerts lists it.", examples=[7])]) -> dict[str, Any]:
    """Acknowledge an alert (idempotent); 404 when there is no such alert."""
    return ack_alert(_db(request), alert_id)
