#!/usr/bin/python3
"""Reads NODEDIR/private/servers.yaml the way Tahoe-LAFS 1.20 does and prints,
as JSON, what its StorageFarmBroker makes of each static server.

It follows client.py load_static_servers (yaml.safe_load, then the "storage"
mapping), storage_client.py StorageFarmBroker._make_storage_server (an ann
with anonymous-storage-NURLs makes an HTTPS server; otherwise a Foolscap one
with the entry's "connections" as handler overrides), _parse_announcement
(tubid, permutation seed, nickname) and node.py create_tub (the default
handler map from tahoe.cfg, dict.update()d with the overrides; a handler
name the node has no handler object for installs none).

Usage: tahoe_servers.py NODEDIR"""

import base64, configparser, hashlib, json, os, re, sys
import yaml

nodedir = sys.argv[1]
cfg = configparser.ConfigParser(strict=False, interpolation=None)
cfg.read(os.path.join(nodedir, "tahoe.cfg"))

def boolean(section, key, default):
    v = cfg.get(section, key, fallback=None)
    if v is None:
        return default
    return v.strip().lower() in ("1", "yes", "true", "on")

tcp = cfg.get("connections", "tcp", fallback="tcp").lower()
objects = {"tcp": "tcp"}
if boolean("tor", "enabled", True):
    objects["tor"] = "tor"
if boolean("i2p", "enabled", True):
    objects["i2p"] = "i2p"
default = {"tcp": None if tcp == "disabled" else tcp, "tor": "tor", "i2p": "i2p"}

def a2b(s):
    s = s.upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))

with open(os.path.join(nodedir, "private", "servers.yaml")) as f:
    servers_yaml = yaml.safe_load(f)
static = servers_yaml.get("storage", {})
out = {}
for server_id, server in sorted({str(k): v for k, v in static.items()}.items()):
    try:
        ann = server["ann"]
        if len(ann.get("anonymous-storage-NURLs", [])) > 0:
            out[server_id] = {"kind": "https"}
            continue
        furl = ann["anonymous-storage-FURL"]
        m = re.match(r"pb://(\w+)@([^/]*)/(.+)$", furl)
        assert m, furl
        if "permutation-seed-base32" in ann:
            seed = a2b(ann["permutation-seed-base32"])
        elif re.search(r"^v0-[0-9a-zA-Z]{52}$", server_id):
            seed = a2b(server_id[3:])
        else:
            seed = hashlib.sha256(server_id.encode()).digest()
        handlers = dict(default)
        handlers.update(server.get("connections", {}))
        out[server_id] = {
            "kind": "foolscap",
            "tubid": m.group(1).lower(),
            "hints": m.group(2).split(",") if m.group(2) else [],
            "swissnum": m.group(3),
            "nickname": ann.get("nickname", ""),
            "seed": seed.hex(),
            "handlers": {k: (objects.get(v) if isinstance(v, str) else None) for k, v in sorted(handlers.items())},
        }
    except Exception as e:  # Tahoe logs and skips the entry
        out[server_id] = {"kind": "skipped", "error": repr(e)}
json.dump(out, sys.stdout, sort_keys=True)
