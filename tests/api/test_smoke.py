from tests.helpers import Api, location_body


def test_a_location_round_trips(api: Api) -> None:
    r = api.put("/v1/locations/berlin", json=location_body())
    assert r.status_code == 201, r.text
    assert api.get("/v1/locations/berlin").json()["address"]["country"] == "DE"
