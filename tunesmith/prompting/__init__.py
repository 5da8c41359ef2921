"""Prompt understanding: free text in English or Chinese read into a model family and its parameters.

``interpret(text, families)`` returns an :class:`Interpretation` (JSON via ``as_dict()``) that says, for every
parameter, its value, where it came from (an exact rule, a vocabulary word, an embedding match or a default), from
which words and how confidently, plus the words not used; ``raise_if_refused()`` gives the 422 for text that is
not about music or contradicts itself. The vocabulary is the editable table ``vocabulary.toml`` (docs/prompts.md).
The embedding models (:data:`EMBEDDING_MODELS`) ship in PyPI packages, load lazily once per process and are checked
by sha256; :func:`warm_up` loads them ahead of the first prompt.
"""

from __future__ import annotations

from tunesmith.prompting.embedding import MODELS as EMBEDDING_MODELS
from tunesmith.prompting.embedding import EmbeddingModelInfo, verify_files
from tunesmith.prompting.engine import DEFAULT_SETTINGS, EngineSettings, interpret, warm_up
from tunesmith.prompting.families import default_families
from tunesmith.prompting.interpretation import Interpretation, Match, ParamReading
from tunesmith.prompting.spec import FamilySpec, ParamSpec, family_from_json_schema
from tunesmith.prompting.vocabulary import STYLE_IDS, load_vocabulary


def embedding_model_cards(settings: EngineSettings = DEFAULT_SETTINGS) -> list[dict]:
    """Model-list cards (id, model, package, licence, languages, size) of the embedding models in use."""
    names = dict.fromkeys(n for n in (settings.english_model, settings.chinese_model) if n)
    return [EMBEDDING_MODELS[n].card() for n in names]


__all__ = ["DEFAULT_SETTINGS", "EMBEDDING_MODELS", "STYLE_IDS", "EmbeddingModelInfo", "EngineSettings", "FamilySpec",
           "Interpretation", "Match", "ParamReading", "ParamSpec", "default_families", "embedding_model_cards",
           "family_from_json_schema", "interpret", "load_vocabulary", "verify_files", "warm_up"]
