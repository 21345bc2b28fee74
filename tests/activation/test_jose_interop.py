"""The license document verifies with a JOSE library the project does not sign with (S4).

The project signs with PyJWT; joserfc here plays "anyone holding the public key": it imports
the JWK set from /api/v1/keys and checks the compact JWS, and refuses any flipped bit.
"""

import base64
import json
import random
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet, OKPKey

from tokens.models import Server

pytestmark = [
    pytest.mark.django_db,
    # joserfc warns that RFC 9864 deprecates "EdDSA" for "Ed25519"; the contract fixes "EdDSA".
    pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning"),
]

FINGERPRINT = "fp-jose-1"


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip_bit(document: str, part: int, byte: int, bit: int) -> str:
    """The document with one bit of the decoded payload (1) or signature (2) flipped."""
    parts = document.split(".")
    raw = bytearray(b64decode(parts[part]))
    raw[byte] ^= 1 << bit
    parts[part] = b64encode(bytes(raw))
    return ".".join(parts)


@pytest.fixture
def activated(cast, perpetual, subscription, pending_server, token_for, device, system):
    from tokens import services

    token = token_for(pending_server, cast.recording, 12)
    services.assign_capacity(server=pending_server, product=cast.console, quantity=3, actor=system)
    response = device.post(
        "/api/v1/activation",
        {"token": token, "fingerprint": FINGERPRINT, "hostname": "pbx", "version": "W26"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def key_set(device, activated) -> KeySet:
    response = device.get("/api/v1/keys")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def test_the_document_verifies_with_joserfc_and_carries_the_contract_claims(
    activated, key_set, pending_server, device
):
    document = activated["license"]

    token = jwt.decode(document, key_set, algorithms=["EdDSA"])

    assert token.header["alg"] == "EdDSA"
    assert token.header["typ"] == "license+jwt"
    assert token.header["kid"] in {key.kid for key in key_set.keys}
    claims = token.claims
    server = Server.objects.get(pk=pending_server.pk)
    assert claims["sub"] == str(server.pk) == activated["server_id"]
    assert claims["fingerprint"] == FINGERPRINT == server.fingerprint
    assert claims["mode"] == "online"
    assert claims["account"] == {"id": str(server.account_id), "name": "Carol Corp"}
    assert {(e["product"], e["quantity"], e["kind"]) for e in claims["entitlements"]} == {
        ("CALL_RECORDING", 12, "perpetual"),
        ("ATTENDANT_CONSOLE", 3, "subscription"),
    }
    for item in claims["entitlements"]:
        assert {"product", "quantity", "kind", "ends_at", "care_ends_at", "care_status"} <= set(
            item
        )
        assert item["care_status"] == "active"
    assert claims["services"]
    assert claims["iat"] < claims["refresh_after"] < claims["exp"]

    # joserfc's own claim checks agree: issuer, subject, lease not over.
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": settings.LICENSE_ISSUER},
        sub={"essential": True, "value": activated["server_id"]},
        exp={"essential": True},
        iat={"essential": True},
    )
    registry.validate(claims)


def test_the_published_jwk_imports_as_an_okp_key(activated, device):
    document = activated["license"]
    kid = json.loads(b64decode(document.split(".")[0]))["kid"]
    published = {k["kid"]: k for k in device.get("/api/v1/keys").json()["keys"]}

    key = OKPKey.import_key(published[kid])

    assert key.kid == kid and key.curve_name == "Ed25519"
    assert jws.deserialize_compact(document, key, algorithms=["EdDSA"]).protected["kid"] == kid


def test_joserfc_refuses_the_document_under_another_algorithm_list(activated, key_set):
    with pytest.raises(JoseError):
        jwt.decode(activated["license"], key_set, algorithms=["HS256"])


# Property-style: many different single-bit flips, spread over the signature and the payload,
# chosen by a seeded generator so a failure can be replayed.
SIGNATURE_FLIPS = [(2, byte, bit) for byte, bit in [(0, 0), (31, 7), (32, 0), (63, 7)]] + [
    (2, random.Random(seed).randrange(64), random.Random(seed + 100).randrange(8))
    for seed in range(8)
]


def _payload_flips(length: int) -> list[tuple[int, int, int]]:
    rng = random.Random(4)
    positions = {0, length // 2, length - 1} | {rng.randrange(length) for _ in range(9)}
    return [(1, byte, rng.randrange(8)) for byte in sorted(positions)]


def test_any_flipped_bit_fails_verification_in_joserfc(activated, key_set):
    document = activated["license"]
    jwt.decode(document, key_set, algorithms=["EdDSA"])  # the untouched document verifies
    payload_length = len(b64decode(document.split(".")[1]))
    flips = SIGNATURE_FLIPS + _payload_flips(payload_length)
    assert len({(part, byte) for part, byte, _ in flips}) >= 20

    for part, byte, bit in flips:
        tampered = flip_bit(document, part, byte, bit)
        assert tampered != document
        with pytest.raises(BadSignatureError):
            jws.deserialize_compact(tampered, key_set, algorithms=["EdDSA"])
        with pytest.raises(JoseError):
            jwt.decode(tampered, key_set, algorithms=["EdDSA"])


def test_a_changed_protected_header_fails_too(activated, key_set):
    document = activated["license"]
    header = json.loads(b64decode(document.split(".")[0]))
    # Keep the header valid JSON with the same kid and alg; change only "typ".
    header["typ"] = "license+jws"
    parts = document.split(".")
    parts[0] = b64encode(json.dumps(header, separators=(",", ":")).encode())
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(".".join(parts), key_set, algorithms=["EdDSA"])


# --- The chain of trust, checked by the documented rules alone ----------------------------------
# A third party's verifier, written from /api/v1/keys's description (activation_api.api:
# VERIFYING_A_DOCUMENT) and the `Jwk.endorsement` schema, in joserfc: nothing of the project's
# own code. Each step below is one numbered rule there.

SKEW = 300
ROOT_PREFIX = "ed25519:"


class Refused(Exception):
    pass


def okp(x: str) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})


def verify_by_the_documented_rules(document: str, key_set: dict, root: str, now: int) -> dict:
    try:  # 1. header, and the key it names
        header = jws.extract_compact(document.encode()).protected
    except (JoseError, ValueError) as exc:
        raise Refused("not a compact JWS") from exc
    if header.get("alg") != "EdDSA" or header.get("typ") != "license+jwt":
        raise Refused("not a license document")
    named = [key for key in key_set["keys"] if key.get("kid") == header.get("kid")]
    if len(named) != 1 or named[0].get("kty") != "OKP" or named[0].get("crv") != "Ed25519":
        raise Refused("no Ed25519 key of that kid")
    key = named[0]
    try:  # 2. the endorsement is the root's
        endorsement = jws.deserialize_compact(
            key.get("endorsement", ""), okp(root.removeprefix(ROOT_PREFIX)), algorithms=["EdDSA"]
        )
    except (JoseError, ValueError) as exc:
        raise Refused("the root does not endorse this key") from exc
    if endorsement.protected.get("typ") != "key-endorsement+jwt":
        raise Refused("not an endorsement")
    endorsed = json.loads(endorsement.payload)
    # 3. ...of this very key
    if (endorsed.get("kid"), endorsed.get("x"), endorsed.get("crv")) != (
        key["kid"],
        key["x"],
        key["crv"],
    ):
        raise Refused("the endorsement names another key")
    try:  # 4. the document's signature
        claims = json.loads(
            jws.deserialize_compact(document, okp(key["x"]), algorithms=["EdDSA"]).payload
        )
    except (JoseError, ValueError) as exc:
        raise Refused("bad signature") from exc
    # 5. dated inside the endorsement's window; 6. not in the future
    if not endorsed["nbf"] <= claims["iat"] <= endorsed["exp"]:
        raise Refused("dated outside the key's endorsement")
    if claims["iat"] > now + SKEW:
        raise Refused("dated in the future")
    return claims


def now() -> int:
    return int(time.time())


@pytest.fixture
def published(device, activated) -> dict:
    return device.get("/api/v1/keys").json()


def test_a_genuine_document_passes_the_documented_checks(activated, published, vendor_root):
    claims = verify_by_the_documented_rules(activated["license"], published, vendor_root, now())

    assert claims["sub"] == activated["server_id"]


def forge(claims: dict, kid: str, attacker: OKPKey) -> str:
    header = {"alg": "EdDSA", "typ": "license+jwt", "kid": kid}
    return jws.serialize_compact(header, json.dumps(claims), attacker, algorithms=["EdDSA"])


@pytest.mark.parametrize("kid", ["same", "other"])
def test_a_genuine_endorsement_copied_onto_an_attackers_key_is_refused(
    activated, published, vendor_root, kid
):
    genuine = published["keys"][0]
    attacker = OKPKey.generate_key("Ed25519")
    attacker_x = attacker.as_dict(private=False)["x"]
    attacker_kid = genuine["kid"] if kid == "same" else "attackers-own-kid"
    # The attacker's key, dressed in the genuine key's endorsement, served in place of it (same
    # kid) or beside it (its own kid); a document with more capacity, signed by that key.
    stolen = {**genuine, "kid": attacker_kid, "x": attacker_x}
    key_set = {"keys": [stolen] if kid == "same" else [genuine, stolen]}
    claims = json.loads(b64decode(activated["license"].split(".")[1]))
    claims["entitlements"][0]["quantity"] = 100_000
    forged = forge(claims, attacker_kid, attacker)
    jws.deserialize_compact(forged, okp(attacker_x), algorithms=["EdDSA"])  # a real signature

    with pytest.raises(Refused, match="names another key"):
        verify_by_the_documented_rules(forged, key_set, vendor_root, now())


def test_a_key_without_the_roots_endorsement_is_refused(activated, published, vendor_root):
    bare = {
        "keys": [{k: v for k, v in key.items() if k != "endorsement"} for key in published["keys"]]
    }

    with pytest.raises(Refused, match="does not endorse"):
        verify_by_the_documented_rules(activated["license"], bare, vendor_root, now())


def test_a_future_dated_document_is_refused(activated, device, vendor_root):
    # A genuine document, issued by the service two hours ahead of the verifier's clock.
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        response = device.post(
            "/api/v1/activation/sync",
            {"fingerprint": FINGERPRINT, "usage": {}},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {activated['credential']}",
        )
        issued_at = now()
    assert response.status_code == 200, response.content
    document = response.json()["license"]
    key_set = device.get("/api/v1/keys").json()

    with pytest.raises(Refused, match="future"):
        verify_by_the_documented_rules(document, key_set, vendor_root, now())
    # Only its date was wrong: at the time it names, it verifies.
    assert verify_by_the_documented_rules(document, key_set, vendor_root, issued_at)


def test_the_keys_schema_documents_the_endorsement_and_the_rules(device):
    schema = device.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    endorsement = schema["components"]["schemas"]["Jwk"]["properties"]["endorsement"]
    assert endorsement["type"] == "string"
    for member in ("key-endorsement+jwt", "kid", "x", "crv", "nbf", "exp"):
        assert member in endorsement["description"]
    rules = schema["paths"]["/api/v1/keys"]["get"]["description"]
    assert "`kid`, `x` and `crv` equal the key's" in rules
    assert "`nbf <= iat <= exp`" in rules and "iat <= now + skew" in rules
