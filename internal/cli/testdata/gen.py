#!/usr/bin/python3
"""Writes the golden node directory testdata/node, shaped like one Python
Tahoe-LAFS 1.20 writes: tahoe.cfg as "tahoe create-client --hide-ip" leaves
it (comments, unrelated sections), introducers.yaml, two introducer caches
written with yaml.safe_dump as Tahoe's IntroducerClient does (unsigned,
sorted keys), and a hand-written servers.yaml with comments.

Run it from this directory: /usr/bin/python3 gen.py. Keys are derived from
fixed seeds, so the output is the same every time."""

import base64, hashlib, os
import yaml
from nacl.signing import SigningKey

def b32(b):
    return base64.b32encode(b).decode().lower().rstrip("=")

def server(n):
    seed = hashlib.sha256(b"tubfarm-cli-golden-%d" % n).digest()
    vk = SigningKey(seed).verify_key.encode()
    tubid = b32(hashlib.sha256(b"tubid-%d" % n).digest())[:32]
    swiss = b32(hashlib.sha256(b"swiss-%d" % n).digest())[:32]
    return "v0-" + b32(vk), tubid, swiss

def onion(n):
    return b32(hashlib.sha256(b"onion-%d" % n).digest())[:56] + ".onion"

def ann(n, nick, hints, seqnum, nurls=False):
    key, tubid, swiss = server(n)
    a = {
        "anonymous-storage-FURL": "pb://%s@%s/%s" % (tubid, ",".join(hints), swiss),
        "app-versions": {},
        "my-version": "tahoe-lafs/1.20.0",
        "nickname": nick,
        "nonce": b32(hashlib.sha256(b"nonce-%d-%d" % (n, seqnum)).digest()),
        "oldest-supported": "1.0.0",
        "permutation-seed-base32": b32(hashlib.sha256(b"seed-%d" % n).digest()[:20]),
        "seqnum": seqnum,
        "service-name": "storage",
        "version": 0,
    }
    if nurls:
        spki = base64.urlsafe_b64encode(hashlib.sha256(b"spki-%d" % n).digest()).decode().rstrip("=")
        a["anonymous-storage-NURLs"] = ["pb+tor://%s@%s:3458/%s#v=1" % (spki, onion(n), swiss)]
    return {"ann": a, "key_s": key}

os.makedirs("node/private", exist_ok=True)

with open("node/tahoe.cfg", "w") as f:
    f.write("""# -*- mode: conf; coding: utf-8 -*-

# This file controls the configuration of the Tahoe node that
# lives in this directory. It is only read at node startup.
# For details about the keys that can be set here, please
# read the 'docs/configuration.rst' file that came with your
# Tahoe installation.


[node]
nickname = operator
web.port = tcp:3456:interface=127.0.0.1
web.static = public_html
tub.port = disabled
tub.location = disabled
reveal-IP-address = false
#log_gatherer.furl =
#timeout.keepalive =
#timeout.disconnect =
#ssh.port = 8022
#ssh.authorized_keys_file = ~/.ssh/authorized_keys


[client]
# Which services should this client connect to?
helper.furl =
#stats_gatherer.furl =

# Encoding parameters this client will use for newly-uploaded files
# This can be changed at any time: the encoding is saved in each filecap,
# and we can download old files with any encoding parameters.
shares.needed = 3
shares.happy = 7
shares.total = 10


[storage]
# Shall this node provide storage service?
enabled = false
#readonly =
reserved_space = 1G


[helper]
# Shall this node run a helper service that clients can use?
enabled = false


[connections]
tcp = tor


[tor]
socks.port = tcp:127.0.0.1:9050
""")

with open("node/private/introducers.yaml", "w") as f:
    f.write("""introducers:
  alpha:
    furl: pb://%s@tor:%s:3457/introducer
  beta:
    furl: pb://%s@tor:%s:3457/introducer
""" % (server(100)[1], onion(100), server(101)[1], onion(101)))

# alpha: storage-1, storage-2 (seqnum 3), storage-3 (hints A), twin (7)
# beta:  storage-2 (seqnum 5), storage-3 (hints B), nas (4, with NURLs), storage-6, twin (8)
alpha = [
    ann(1, "storage-1", ["tor:%s:3457" % onion(1)], 2),
    ann(2, "storage-2", ["tor:%s:3457" % onion(2)], 3),
    ann(3, "storage-3", ["tor:%s:3457" % onion(3)], 1),
    ann(7, "twin", ["tor:%s:3457" % onion(7)], 1),
]
beta = [
    ann(2, "storage-2", ["tor:%s:3457" % onion(2)], 5),
    ann(3, "storage-3", ["tor:%s:3457" % onion(3), "tcp:storage-3.example:3457"], 2),
    ann(4, "nas", ["tor:%s:3457" % onion(4)], 4, nurls=True),
    ann(6, "storage-6", ["tor:%s:3457" % onion(6)], 9),
    ann(8, "twin", ["tor:%s:3457" % onion(8)], 1),
]
for pet, entries in (("alpha", alpha), ("beta", beta)):
    with open("node/private/introducer_%s_cache.yaml" % pet, "w") as f:
        f.write(yaml.safe_dump(entries))

k6, t6, s6 = server(6)
with open("node/private/servers.yaml", "w") as f:
    f.write("""# Static servers: "Static Server Definitions" in Tahoe's configuration.rst.
storage:
  # my own box, known to no introducer
  my-serverid-1:
    ann:
      nickname: lazy
      anonymous-storage-FURL: pb://u33m4y7klhz3bypswqkozwetvabelhxt@tor:%s:51298/eiu2i7p6d6mm4ihmss7ieou5hac3wn6b   # via Tor

  # storage-6 at the office: its tcp hint, through Tor
  %s:
    ann:
      nickname: storage-6
      anonymous-storage-FURL: "pb://%s@tcp:office.example:3457/%s"
    connections:
      tcp: tor    # explicit, same as tahoe.cfg

# end of servers
""" % (onion(5), k6, t6, s6))

for n in range(1, 9):
    print(n, server(n)[0])
