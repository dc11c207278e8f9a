package main

// pyServers runs N real Foolscap Tubs in one Python process, each on its
// own 127.0.0.1 port with the certificate given for it (argv[1] is a JSON
// list of PEM texts), each hosting a Tahoe-like storage object, and prints
// "FURL <i> <furl>" for each and then "READY".
const pyServers = `
import sys, json
from twisted.internet import reactor
from foolscap.api import Tub, Referenceable

class Storage(Referenceable):
    def remote_get_version(self):
        return {b"application-version": b"tahoe-lafs/1.19.0",
                b"http://allmydata.org/tahoe/protocols/storage/v1": {b"available-space": 123456789}}

pems = json.load(open(sys.argv[1]))
tubs = []
for i, pem in enumerate(pems):
    tub = Tub(certData=pem)
    tub.startService()
    l = tub.listenOn("tcp:0:interface=127.0.0.1")
    tub.setLocation("tcp:127.0.0.1:%d" % l.getPortnum())
    print("FURL %d %s" % (i, tub.registerReference(Storage())), flush=True)
    tubs.append(tub)
print("READY", flush=True)
reactor.run()
`

// pyClient is Foolscap's side of the comparison. argv: mode ("pertub" or
// "shared"), a JSON file of FURLs, the number of identity samples. It
// times that many Tub() constructions one after another (Foolscap makes an
// RSA-2048 key and certificate in each), then, from a fresh start, makes a
// Tub for every server (pertub, as Tahoe-LAFS's per-server Tubs would) or
// one Tub for all (shared), connects to every FURL at once with
// getReference and calls get_version on each, and prints one JSON line.
const pyClient = `
import sys, json, time, resource
from twisted.internet import reactor, defer
from foolscap.api import Tub

mode, path, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
furls = json.load(open(path))
ids = []
for _ in range(k):
    t = time.perf_counter()
    Tub()
    ids.append(time.perf_counter() - t)

result = {}
def main():
    t0 = time.perf_counter()
    ds, tubs = [], []
    tub = None
    if mode == "shared":
        tub = Tub()
        tub.startService()
        tubs.append(tub)
    for f in furls:
        if mode == "pertub":
            tub = Tub()
            tub.startService()
            tubs.append(tub)
        d = tub.getReference(f)
        d.addCallback(lambda ref: ref.callRemote("get_version"))
        ds.append(d)
    def done(_):
        result["connect_s"] = time.perf_counter() - t0
        reactor.stop()
    def failed(f):
        result["error"] = str(f.value)
        reactor.stop()
    defer.gatherResults(ds, consumeErrors=True).addCallbacks(done, failed)

reactor.callWhenRunning(main)
reactor.run()
result["ids_s"] = ids
result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(result), flush=True)
`
