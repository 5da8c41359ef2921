"""The OpenAPI document says what the API does (schemathesis checks it at length in test_service_contract.py):
links from each POST to the operations on what it made, the served models, non-empty files, the errors each
operation can answer with their headers; OPTIONS and unsupported methods answered with the path's Allow."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.tiny import tiny_weights
from tunesmith.config import Settings
from tunesmith.service import create_app
from tunesmith.service.contract import allowed_methods

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("openapi")
    settings = Settings(data_dir=root / "data", weights_dir=tiny_weights(root / "weights"), workers=0)
    with TestClient(create_app(settings)) as client:
        yield client, client.get("/openapi.json").json()


def test_each_post_links_to_the_operations_on_what_it_made(served):
    _, doc = served
    operation_ids = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    for collection in ("/v1/generations", "/v1/uploads", "/v1/analyses"):
        # every operation on one made thing whose only path parameter is its id (a stem also needs a track name)
        on_one = {op["operationId"] for path, ops in doc["paths"].items() if path.startswith(collection + "/{")
                  and path.count("{") == 1 for op in ops.values()}
        assert on_one
        answers = {status: r for status, r in doc["paths"][collection]["post"]["responses"].items()
                   if status.startswith("2")}
        for status, response in answers.items():
            links = response["links"]
            assert {link["operationId"] for link in links.values()} == on_one, (collection, status, sorted(links))
            for link in links.values():
                assert link["operationId"] in operation_ids
                assert list(link["parameters"].values()) == ["$response.body#/id"]


def test_the_document_names_the_served_models_and_refuses_empty_files(served):
    _, doc = served
    schemas = doc["components"]["schemas"]
    model = schemas["GenerationCreate"]["properties"]["model"]["anyOf"]
    assert model[0]["enum"] == ["chorale", "folk", "notes", "perform"] and model[1] == {"type": "null"}
    assert schemas["GenerationCreate"]["anyOf"]  # a model, a prompt, or both
    files = [field for name, s in schemas.items() if name.startswith("Body_") for field in s["properties"].values()]
    assert len(files) == 3 and all(field["minLength"] == 1 for field in files)


def test_errors_are_declared_where_they_can_happen_with_their_headers(served):
    _, doc = served
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            if not op.get("security"):  # health, models, the public key: nothing to refuse
                assert set(responses) == {"200"}, (method, path)
                continue
            assert {"401", "429"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"] and "WWW-Authenticate" in responses["401"]["headers"]
            assert ("404" in responses) == ("{" in path), (method, path)
            for status, response in responses.items():
                if status[0] in "45":
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert {"400", "413", "415"} <= set(doc["paths"]["/v1/generations"]["post"]["responses"])
    assert {"206", "400", "409", "416"} <= set(doc["paths"]["/v1/generations/{generation_id}/audio"]["get"]
                                               ["responses"])
    assert "422" not in doc["paths"]["/v1/generations/{generation_id}"]["get"]["responses"]  # nothing to refuse


def test_options_and_unsupported_methods_name_the_paths_methods(served):
    client, doc = served
    for path, ops in doc["paths"].items():
        url = path.replace("{generation_id}", "x").replace("{upload_id}", "x").replace("{analysis_id}", "x")
        documented = sorted(m.upper() for m in ops if m in HTTP_METHODS)
        options = client.options(url)
        assert options.status_code == 204 and options.content == b""
        allowed = [m.strip() for m in options.headers["allow"].split(",")]
        assert sorted(m for m in allowed if m != "OPTIONS") == documented and "OPTIONS" in allowed, (path, allowed)
        other = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in documented)
        refused = client.request(other, url)
        assert refused.status_code == 405 and refused.headers["allow"] == options.headers["allow"], path
        assert refused.json()["error"]["code"] == "method_not_allowed"
    assert allowed_methods(client.app, "/nowhere") == [] and client.options("/nowhere").status_code == 404
