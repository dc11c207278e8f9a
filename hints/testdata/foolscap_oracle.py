# Reference oracle for hints' interop test: runs Foolscap 21.7's own FURL
# parser and connection-hint handlers on the inputs in the JSON file argv[1]
# and prints one JSON result per input. txtorcon and txi2p are stubbed (only
# their endpoint constructors are reached), so the hint grammars, the legacy
# conversion and the Tor handler's address filter are Foolscap's real code.
import json
import sys
import types

txtorcon = types.ModuleType("txtorcon")
txtorcon.TorClientEndpoint = lambda host, port, socks_endpoint=None: ("tor", host, port)
sys.modules["txtorcon"] = txtorcon
txi2p = types.ModuleType("txi2p")
sam = types.ModuleType("txi2p.sam")


class _SAM:
    @staticmethod
    def new(ep, host, port, **kw):
        return ("i2p", host, port)


sam.SAMI2PStreamClientEndpoint = _SAM
txi2p.sam = sam
sys.modules["txi2p"] = txi2p
sys.modules["txi2p.sam"] = sam

from twisted.internet.defer import succeed  # noqa: E402
from foolscap.furl import decode_furl  # noqa: E402
from foolscap.connection import get_endpoint  # noqa: E402
from foolscap.info import ConnectionInfo  # noqa: E402
from foolscap.connections import tcp, tor, i2p  # noqa: E402

i2p_handler = object.__new__(i2p._RunningI2P)
i2p_handler._sam_endpoint = None
i2p_handler._kwargs = {}
tor_handler = tor.default_socks()
# Skip connecting to a Tor daemon (Foolscap does that through its eventual-send
# queue, which needs a running reactor); the hint checks before it are real.
tor_handler._maybe_connect = lambda reactor, update_status: succeed(None)
HANDLERS = {"tcp": tcp.default(), "tor": tor_handler, "i2p": i2p_handler}


def furl(s):
    try:
        tubid, hints, name = decode_furl(s)
    except Exception as e:  # BadFURLError or ValueError
        return {"err": str(e)}
    return {"tubid": tubid, "hints": hints, "name": name}


def hint(s, mapping):
    plugins = {k: HANDLERS[v] for k, v in mapping.items() if v}
    info = ConnectionInfo()
    out = {}

    def ok(res):
        ep, host = res
        out.update(handler=info.connectionHandlers.get(s), host=host, port=ep[2] if isinstance(ep, tuple) else ep._port)

    def bad(f):
        out.update(status="bad hint: %s" % (f.value,), handler=info.connectionHandlers.get(s))

    d = get_endpoint(s, plugins, info)
    d.addCallbacks(ok, bad)
    if not out:
        raise SystemExit("handler did not answer synchronously for %r" % (s,))
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        req = json.load(f)
    for s in req["furls"]:
        print(json.dumps(furl(s)))
    for m in req["maps"]:
        for s in req["hints"]:
            print(json.dumps(hint(s, m)))
    print(json.dumps({"done": True}))


main()
