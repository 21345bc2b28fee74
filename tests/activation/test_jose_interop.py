"""The license document verifies with a JOSE library the project does not sign with (S4).

The project signs with PyJWT; joserfc here plays "anyone holding the public key": it imports
the JWK set from /api/v1/keys and checks the compact JWS, and refuses any flipped bit.
"""

import base64
import json
import random

import pytest
from django.conf import settings
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet, OKPKey

from tokens.models import Server

pytestmark = [
    pytest.mark.django_db,
    # joserfc warns that RFC 9864 deprecates "EdDSA" for "Ed25519"; API.md fixes "EdDSA".
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
