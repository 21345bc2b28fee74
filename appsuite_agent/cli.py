"""`appsuite-agent`: activate, sync, status, offline-request, offline-apply, diagnose."""

import argparse
import json
import os
import secrets
import socket
import ssl
import sys
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import __version__
from .fingerprint import machine_fingerprint
from .service import InsecureUrl, Reply, Unreachable, call, check_url, transport
from .state import State, StateUnreadable, load, save
from .trust import IGNORED_SETTING, Root, UntrustedRoot, endorsed, load_root, root_setting
from .verify import (
    MAX_CLOCK_SKEW,
    Refused,
    UnknownKey,
    clock_rolled_back,
    lease_left,
    verify,
)

OK, FAILED, UNLICENSED = 0, 1, 2
DEFAULT_STATE_DIR = os.environ.get("APPSUITE_STATE_DIR", "./appsuite-state")
APPSUITE_VERSION = os.environ.get("APPSUITE_VERSION", "Winter'26")


def _say(message: str) -> None:
    print(message)


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# What status and diagnose say while an operator-supplied root is trusted (development mode).
DEVELOPMENT_ONLY = "not licensed for production use (root: operator-supplied, development only)"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _api(url: str, path: str) -> str:
    return url.rstrip("/") + "/api/v1" + path


def _endorsed_jwks(listed: object, root: Root) -> dict[str, dict[str, Any]]:
    """The Ed25519 JWKs of a key set that the root endorses; the rest are dropped."""
    keys = {}
    for key in listed if isinstance(listed, list) else []:
        if (
            isinstance(key, dict)
            and key.get("kty") == "OKP"
            and key.get("crv") == "Ed25519"
            and isinstance(key.get("kid"), str)
            and key["kid"]
        ):
            keys[key["kid"]] = key
    return {
        kid: {k: v for k, v in key.items() if k != "_window"}
        for kid, key in endorsed(keys, root).items()
    }


def fetch_keys(url: str, root: Root) -> dict[str, dict[str, Any]]:
    reply = call("GET", _api(url, "/keys"))
    if reply.status != 200:
        raise Unreachable(f"/api/v1/keys answered {reply.status}")
    return _endorsed_jwks(reply.body.get("keys"), root)


def _held_claims(state: State, root: Root, server_id: str | None) -> dict[str, Any] | None:
    if not state.document:
        return None
    try:
        return verify(
            state.document,
            state.keys,
            root=root,
            fingerprint=state.fingerprint,
            server_id=server_id,
            held=True,
        ).claims
    except Refused:
        return None  # nothing trustworthy is held (an edited state file, say)


def _accept(
    state: State, document: str, *, root: Root, server_id: str | None, refresh_keys: bool
) -> dict[str, Any]:
    """Verify and, if newer than what we hold, take the document. Returns its claims."""
    try:
        verified = verify(
            document, state.keys, root=root, fingerprint=state.fingerprint, server_id=server_id
        )
    except UnknownKey:
        if not refresh_keys or not state.url:
            raise
        # A rotation: learn the service's current keys over the same HTTPS channel, each
        # endorsed by the root. Keys are never taken from a document itself.
        state.keys.update(fetch_keys(state.url, root))
        verified = verify(
            document, state.keys, root=root, fingerprint=state.fingerprint, server_id=server_id
        )
    held = _held_claims(state, root, server_id)
    if held is not None and verified.claims["iat"] < held["iat"]:
        raise Refused("the document is older than the one held (replay?)")
    state.document = document
    state.server_id = verified.claims["sub"]
    state.mode = verified.claims.get("mode", "")
    state.last_verified_at = time.time()
    state.dropped = ""
    return verified.claims


def _drop(state: State, reason: str) -> None:
    """Revocation reached us: the license is gone at once, not at the end of its lease."""
    state.document = ""
    state.credential = ""
    state.etag = ""
    state.dropped = reason


def _clock_skew(reply: Reply) -> float | None:
    date = reply.headers.get("Date") or reply.headers.get("date")
    if not date:
        return None
    try:
        return time.time() - parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


def cmd_activate(args: argparse.Namespace) -> int:
    folder = Path(args.state_dir)
    root: Root = args.root
    try:
        check_url(args.url)
    except InsecureUrl as exc:
        _err(str(exc))
        return FAILED
    try:
        held = load(folder)
    except StateUnreadable:
        if not args.force:
            raise
        held = State()
    if held.activated and not args.force:
        _err("this server is already activated (use --force to start over)")
        return FAILED
    state = State(url=args.url, fingerprint=machine_fingerprint())
    try:
        state.keys = fetch_keys(args.url, root)
        reply = call(
            "POST",
            _api(args.url, "/activation"),
            {
                "token": args.token,
                "fingerprint": state.fingerprint,
                "hostname": socket.gethostname(),
                "version": APPSUITE_VERSION,
            },
        )
    except Unreachable as exc:
        _err(f"cannot reach the licensing service: {exc}. Run `appsuite-agent diagnose`.")
        return FAILED
    if reply.status != 201:
        _err(f"activation refused ({reply.status} {reply.code}): {reply.detail}")
        return FAILED
    state.credential = reply.body["credential"]
    state.clock_skew = _clock_skew(reply)
    try:
        # The key may be newer than the list fetched a moment ago (a rotation in between).
        _accept(
            state,
            reply.body["license"],
            root=root,
            server_id=reply.body["server_id"],
            refresh_keys=True,
        )
    except (Refused, Unreachable) as exc:
        # Keep the credential: the activation happened, and a later sync can fetch a document.
        # Nothing of the refused document is kept (not even its ETag: a sync must fetch it
        # again rather than hear that it is up to date).
        state.server_id = reply.body["server_id"]
        state.last_error = f"the service's license document was refused: {exc}"
        save(folder, state)
        _err(state.last_error)
        _say(
            "Not activated: this server holds no license. Once the cause is fixed, "
            "`appsuite-agent sync` fetches the document again."
        )
        return FAILED
    state.etag = reply.headers.get("ETag", "")
    state.last_contact_at = time.time()
    save(folder, state)
    _say(f"Activated online as server {state.server_id}.")
    return _print_status(state, root)


def cmd_sync(args: argparse.Namespace) -> int:
    folder = Path(args.state_dir)
    state = load(folder)
    if state.dropped and not state.credential:
        _err(f"unlicensed: {state.dropped}")
        return UNLICENSED
    if not state.credential:
        _err("not activated online: run `appsuite-agent activate TOKEN --url URL` first")
        return FAILED
    usage: dict[str, int] = {}
    for product, used in args.usage or []:
        if product in usage:
            _err(f"--usage {product} is given twice: report each product once")
            return FAILED
        usage[product] = used
    headers = {"Authorization": f"Bearer {state.credential}"}
    if state.etag and state.document:
        # Only a document held can be "not modified"; without one the service must send it.
        headers["If-None-Match"] = state.etag
    try:
        reply = call(
            "POST",
            _api(state.url, "/activation/sync"),
            {
                "fingerprint": machine_fingerprint(),
                "version": APPSUITE_VERSION,
                "usage": usage,
            },
            headers,
        )
    except Unreachable as exc:
        state.last_error = f"service unreachable: {exc}"
        save(folder, state)
        _err(f"{state.last_error}; keeping the license held until its lease ends")
        _print_status(state, args.root)
        return FAILED
    return _after_sync(folder, state, reply, args.root)


# Answers after which this server holds no license any more, whatever its lease says.
REVOKING = {
    "credential_revoked": "the service revoked this server's credential (deactivated or "
    "replaced in the portal)",
    "server_replaced": "this server was replaced by its successor in the portal",
}


def _after_sync(folder: Path, state: State, reply: Reply, root: Root) -> int:
    state.last_contact_at = time.time()
    state.clock_skew = _clock_skew(reply)
    if reply.code in REVOKING:
        _drop(state, REVOKING[reply.code])
        save(folder, state)
        _err(f"license dropped: {state.dropped}")
        _print_status(state, root)
        return UNLICENSED
    if reply.status == 304 and not state.document:
        state.etag = ""
        state.last_error = "the service answered 304 Not Modified but no document is held"
        save(folder, state)
        _err(f"not activated: {state.last_error}")
        _print_status(state, root)
        return FAILED
    if reply.status == 304:
        state.last_error = ""
        save(folder, state)
        _say("License is up to date.")
        return _print_status(state, root)
    if reply.status != 200:
        state.last_error = f"sync refused ({reply.status} {reply.code}): {reply.detail}"
        save(folder, state)
        _err(state.last_error)
        return FAILED
    try:
        _accept(
            state, reply.body["license"], root=root, server_id=state.server_id, refresh_keys=True
        )
    except (Refused, Unreachable) as exc:
        # Nothing of the refused document is kept: the ETag stays the held document's.
        state.last_error = f"document refused: {exc}"
        save(folder, state)
        _err(state.last_error)
        _print_status(state, root)
        return FAILED
    state.etag = reply.headers.get("ETag", "")
    state.last_error = ""
    save(folder, state)
    _say("License updated.")
    return _print_status(state, root)


def _print_status(state: State, root: Root, as_json: bool = False) -> int:
    now = time.time()
    report: dict[str, Any] = {
        "server_id": state.server_id,
        "mode": state.mode,
        "root_key": f"{root.kid} ({root.source})",
        "development_only": root.operator_supplied,
    }
    if root.operator_supplied:
        report["warning"] = DEVELOPMENT_ONLY
    if state.clock_skew is not None and abs(state.clock_skew) > MAX_CLOCK_SKEW:
        report["clock_skew"] = (
            f"this machine's clock is {state.clock_skew:+.0f} s off the service's: "
            "enable time sync (NTP)"
        )
    if state.dropped:
        report.update(state="unlicensed", error=state.dropped)
        return _emit(report, as_json, UNLICENSED)
    if not state.document:
        report.update(state="not activated")
        if state.last_error:
            report["last_error"] = state.last_error
        return _emit(report, as_json, UNLICENSED)
    if clock_rolled_back(state.last_verified_at, now):
        report.update(
            state="error",
            error="clock rollback: local time is earlier than the last verification "
            f"({_when(state.last_verified_at)}); fix the clock",
        )
        return _emit(report, as_json, UNLICENSED)
    try:
        claims = verify(
            state.document,
            state.keys,
            root=root,
            fingerprint=machine_fingerprint(),
            server_id=state.server_id,
            now=now,
            held=True,
        ).claims
    except Refused as exc:
        report.update(state="error", error=f"held document refused: {exc}")
        return _emit(report, as_json, UNLICENSED)
    left = lease_left(claims, now)
    entitlements = claims.get("entitlements", [])
    if left is not None and left <= 0:
        verdict = "lease expired"
    elif not any(e.get("quantity", 0) > 0 for e in entitlements):
        verdict = "unlicensed"
        report["error"] = "the service holds no capacity for this server any more"
    else:
        verdict = "licensed"
    report.update(
        state=verdict,
        account=claims.get("account", {}).get("name", ""),
        issued_at=_when(claims["iat"]),
        lease_ends_at=_when(claims.get("exp")),
        services=claims.get("services", []),
        applications=[
            {
                "product": e["product"],
                "name": e.get("name", e["product"]),
                "quantity": e["quantity"],
                "unit": e.get("unit", ""),
                "kind": e["kind"],
                "term_ends_at": e.get("ends_at"),
                "care_ends_at": e.get("care_ends_at"),
                "care_status": e.get("care_status"),
            }
            for e in claims.get("entitlements", [])
        ],
    )
    if state.last_error:
        report["last_error"] = state.last_error
    return _emit(report, as_json, OK if report["state"] == "licensed" else UNLICENSED)


def _emit(report: dict[str, Any], as_json: bool, code: int) -> int:
    if as_json:
        print(json.dumps(report, indent=2))
        return code
    _say(f"State:    {report['state']}" + (f" ({report['mode']})" if report.get("mode") else ""))
    if report.get("warning"):
        _say(f"Warning:  {report['warning'].upper()}")
    if report.get("error"):
        _say(f"Reason:   {report['error']}")
    if report.get("clock_skew"):
        _say(f"Clock:    {report['clock_skew']}")
    _say(f"Root key: {report['root_key']}")
    if report.get("account"):
        _say(f"Account:  {report['account']}")
        _say(f"Lease:    until {report['lease_ends_at']}")
        _say(f"Services: {', '.join(report['services']) or 'none'}")
        for app in report["applications"]:
            term = f", term to {app['term_ends_at'][:10]}" if app["term_ends_at"] else ""
            care = app["care_ends_at"][:10] if app["care_ends_at"] else "none"
            _say(
                f"  {app['name']}: {app['quantity']} {app['unit']} ({app['kind']}{term}); "
                f"care {app['care_status']} ({care})"
            )
    if report.get("last_error"):
        _say(f"Last error: {report['last_error']}")
    return code


def cmd_status(args: argparse.Namespace) -> int:
    return _print_status(load(Path(args.state_dir)), args.root, as_json=args.json)


def cmd_offline_request(args: argparse.Namespace) -> int:
    request = {
        "token": args.token,
        "fingerprint": machine_fingerprint(),
        "hostname": socket.gethostname(),
        "version": APPSUITE_VERSION,
        "nonce": secrets.token_urlsafe(16),
    }
    Path(args.out).write_text(json.dumps(request, indent=2))
    _say(f"Wrote {args.out}: upload it on the server's page in the licensing portal.")
    return OK


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"cannot read the {what} {path} ({exc})") from exc
    if not isinstance(data, dict):
        raise Refused(f"the {what} {path} is not a JSON object")
    return data


def cmd_offline_apply(args: argparse.Namespace) -> int:
    folder = Path(args.state_dir)
    root: Root = args.root
    try:
        state = load(folder)
    except StateUnreadable:
        state = State()  # an offline server recovers by applying a fresh file
    state.fingerprint = machine_fingerprint()
    try:
        if args.keys:
            offered = _read_json(args.keys, "keys file").get("keys")
            trusted = _endorsed_jwks(offered, root)
            if not trusted:
                _err(
                    f"no key in {args.keys} is endorsed by the vendor's root key "
                    f"({root.kid}, {root.source}); take the file from the service's /api/v1/keys"
                )
                return FAILED
            state.keys.update(trusted)
        if not state.keys:
            _err("no trusted keys: pass --keys with the service's /api/v1/keys saved as a file")
            return FAILED
        document = _read_json(args.file, "license file").get("license", "")
        claims = _accept(
            state, document, root=root, server_id=state.server_id or None, refresh_keys=False
        )
    except Refused as exc:
        _err(f"license file refused: {exc}")
        return FAILED
    if claims.get("mode") != "offline":
        _err("this is not an offline license file")
        return FAILED
    save(folder, state)
    _say("Offline license applied.")
    return _print_status(state, root)


def cmd_diagnose(args: argparse.Namespace) -> int:
    folder = Path(args.state_dir)
    url = args.url or load(folder).url
    if not url:
        _err("give --url (or activate first)")
        return FAILED
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    problems = []
    root: Root = args.root
    _say(f"Root key:     {root.kid} ({root.source})")
    if root.operator_supplied:
        _say(f"Warning:      {DEVELOPMENT_ONLY.upper()}")
    proxy = transport.proxies().get(parsed.scheme)
    _say(f"Proxy:        {proxy or 'none'}" + (" (from the environment)" if proxy else ""))
    _say(f"CA bundle:    {transport.ca_file or 'the system default'}")
    try:
        check_url(url)
    except InsecureUrl as exc:
        problems.append(str(exc))
    try:
        addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port)})
        _say(f"DNS:          {host} -> {', '.join(addresses)}")
    except OSError as exc:
        _say(f"DNS:          {host} does not resolve ({exc})")
        problems.append(f"the name {host} does not resolve: check the server's DNS settings")
    if parsed.scheme == "https":
        try:
            context = transport.context()
            with (
                socket.create_connection((host, port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                _say(f"TLS:          {tls.version()} to {host}:{port}, certificate valid")
        except (OSError, ssl.SSLError) as exc:
            _say(f"TLS:          failed ({exc})")
            problems.append(
                f"no trusted HTTPS connection to {host}:{port}: open port {port} outbound and "
                "check any proxy that inspects TLS"
            )
    else:
        _say(f"TLS:          not used ({parsed.scheme}); production servers must use https")
    try:
        reply = call("GET", _api(url, "/keys"))
        _say(f"Keys:         /api/v1/keys answered {reply.status}")
        if reply.status != 200:
            problems.append(f"the activation API answered {reply.status}")
        elif not _endorsed_jwks(reply.body.get("keys"), root):
            problems.append(
                "none of the service's signing keys is endorsed by this agent's root key: "
                + (
                    "check APPSUITE_ROOT_KEY or the service's root"
                    if root.operator_supplied
                    else "is this the vendor's licensing service?"
                )
            )
        else:
            _say("Endorsement:  the service's keys are endorsed by the root key")
        date = reply.headers.get("Date")
        if date:
            skew = time.time() - parsedate_to_datetime(date).timestamp()
            _say(f"Clock skew:   {skew:+.0f} s against the service")
            if abs(skew) > MAX_CLOCK_SKEW:
                problems.append(
                    f"this machine's clock is off by {skew:+.0f} s: enable time sync (NTP)"
                )
    except Unreachable as exc:
        _say(f"Keys:         unreachable ({exc})")
        problems.append("the licensing service cannot be reached from this machine")
    if problems:
        _say("Verdict:      NOT OK — " + "; ".join(problems) + ".")
        return FAILED
    if root.operator_supplied:
        _say(f"Verdict:      OK for development — {DEVELOPMENT_ONLY}.")
    else:
        _say("Verdict:      OK — this server can activate and sync online.")
    return OK


def usage_item(text: str) -> tuple[str, int]:
    """One `--usage PRODUCT=USED` value."""
    product, sep, used = text.partition("=")
    product = product.strip()
    if not sep or not product:
        raise argparse.ArgumentTypeError(f"{text!r} is not PRODUCT=USED (e.g. CALL_RECORDING=12)")
    try:
        count = int(used)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: USED must be a whole number, 0 or more")
    return product, count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appsuite-agent", description="Reference AppSuite licensing agent."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="folder holding the agent's state"
    )
    parser.add_argument(
        "--insecure-dev",
        action="store_true",
        help="development mode: allow a plain http:// service on this machine (loopback), "
        "and honour APPSUITE_ROOT_KEY (an operator-supplied root, never for production use)",
    )
    parser.add_argument(
        "--ca-file", help="a CA bundle (PEM) to trust besides the system's, e.g. a TLS proxy's"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("activate", help="activate online with a token from the portal")
    p.add_argument("token")
    p.add_argument(
        "--url", required=True, help="the licensing service, e.g. https://licensing.example.com"
    )
    p.add_argument("--force", action="store_true", help="replace an earlier activation")
    p.set_defaults(func=cmd_activate)

    p = sub.add_parser("sync", help="report usage and refresh the license")
    p.add_argument(
        "--usage",
        nargs="*",
        action="extend",
        type=usage_item,
        metavar="PRODUCT=USED",
        help="reported usage (repeat it, or list several after it)",
    )
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("status", help="show the verified license")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("offline-request", help="write a request file for offline activation")
    p.add_argument("token")
    p.add_argument("--out", default="offline-request.json")
    p.set_defaults(func=cmd_offline_request)

    p = sub.add_parser("offline-apply", help="install a license file from the portal")
    p.add_argument("file")
    p.add_argument("--keys", help="the service's /api/v1/keys saved as a file")
    p.set_defaults(func=cmd_offline_apply)

    p = sub.add_parser("diagnose", help="check DNS, TLS, clock and reachability")
    p.add_argument("--url")
    p.set_defaults(func=cmd_diagnose)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    transport.insecure_dev = args.insecure_dev
    transport.ca_file = args.ca_file
    transport.loopback_only = False
    try:
        if root_setting() and not args.insecure_dev:
            _warn(IGNORED_SETTING)
        args.root = load_root(development=args.insecure_dev)
        transport.loopback_only = args.root.operator_supplied
        status: int = args.func(args)
        return status
    except (StateUnreadable, UntrustedRoot) as exc:
        _err(str(exc))
        return FAILED
