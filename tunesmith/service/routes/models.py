"""GET /v1/models: the model cards (id, version, parameters with ranges, licences of the training data)."""

from __future__ import annotations

from fastapi import APIRouter

from tunesmith.prompting import embedding_model_cards
from tunesmith.service.deps import ServicesDep
from tunesmith.service.schemas import ModelsList

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelsList, summary="model cards")
def list_models(services: ServicesDep) -> ModelsList:
    max_bars = services.settings.max_bars
    return ModelsList(models=[m.public(max_bars=max_bars) for m in services.catalog.models.values()],
                      prompt_models=embedding_model_cards())
