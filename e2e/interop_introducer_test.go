package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
)

// These tests run Tahoe's introducer protocol against Debian's
// python3-foolscap, with Tahoe's RemoteInterface names and argument
// constraints, and real Ed25519 signatures from python3-nacl. They fail,
// never skip, when either is missing.

// pyRemoteInterfaces are Tahoe 1.20's introducer interfaces
// (allmydata/introducer/interfaces.py), as the Python peers declare them.
const pyRemoteInterfaces = `
import sys, json, base64
from twisted.internet import reactor, defer, stdio
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer
from foolscap.api import Tub, Referenceable, RemoteInterface, SetOf, DictOf, Any
from nacl.signing import SigningKey, VerifyKey

Announcement_v2 = Any()

class RIIntroducerSubscriberClient_v2(RemoteInterface):
    __remote_name__ = "RIIntroducerSubscriberClient_v2.tahoe.allmydata.com"
    def announce_v2(announcements=SetOf(Announcement_v2)):
        return None

SubscriberInfo = DictOf(bytes, Any())

class RIIntroducerPublisherAndSubscriberService_v2(RemoteInterface):
    __remote_name__ = "RIIntroducerPublisherAndSubscriberService_v2.tahoe.allmydata.com"
    def get_version():
        return DictOf(bytes, Any())
    def publish_v2(announcement=Announcement_v2, canary=Referenceable):
        return None
    def subscribe_v2(subscriber=RIIntroducerSubscriberClient_v2,
                     service_name=bytes, subscriber_info=SubscriberInfo):
        return None

def b32(b):
    return base64.b32encode(b).decode("ascii").lower().rstrip("=")

def b32d(s):
    s = s.upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))

def sign(seed_hex, ann):
    # allmydata.introducer.common.sign_to_foolscap
    key = SigningKey(bytes.fromhex(seed_hex))
    msg = json.dumps(ann).encode("utf-8")
    sig = b"v0-" + b32(key.sign(msg).signature).encode("ascii")
    vk = b"v0-" + b32(bytes(key.verify_key)).encode("ascii")
    return (msg, sig, vk)

def unsign(ann_t):
    # allmydata.introducer.common.unsign_from_foolscap
    msg, sig, key = ann_t
    if not sig.startswith(b"v0-") or not key.startswith(b"v0-"):
        raise ValueError("unknown key")
    VerifyKey(b32d(key[3:].decode())).verify(msg, b32d(sig[3:].decode()))
    return json.loads(msg.decode("utf-8")), key
`

// pyIntroducer is a Tahoe-style introducer: it holds one announcement per
// server key, answers subscribe_v2 after one announce_v2 call with all of
// them, and pushes each new one. Stdin lines "ANN <seed hex> <json>" sign
// and publish an announcement. Its first output line is its FURL; it
// prints "SUBSCRIBED <nickname>" for each subscription.
const pyIntroducer = pyRemoteInterfaces + `
certfile, port = sys.argv[1], int(sys.argv[2])

@implementer(RIIntroducerPublisherAndSubscriberService_v2)
class Introducer(Referenceable):
    def __init__(self):
        self.anns = {}
        self.subs = []
    def remote_get_version(self):
        return {b"http://allmydata.org/tahoe/protocols/introducer/v2": {},
                b"application-version": b"tahoe-lafs/1.20.0"}
    def remote_publish_v2(self, announcement, canary):
        self.publish(announcement)
    def publish(self, ann_t):
        ann, key = unsign(ann_t)
        old = self.anns.get(key)
        if old is not None:
            if unsign(old)[0] == ann:
                return
            if ann["seqnum"] <= unsign(old)[0]["seqnum"]:
                return
        self.anns[key] = ann_t
        for s in self.subs:
            s.callRemote("announce_v2", set([ann_t])).addErrback(lambda f: None)
    def remote_subscribe_v2(self, subscriber, service_name, subscriber_info):
        print("SUBSCRIBED", repr(subscriber_info.get(b"nickname")), flush=True)
        if service_name != b"storage" or subscriber in self.subs:
            return None
        self.subs.append(subscriber)
        subscriber.notifyOnDisconnect(lambda: self.subs.remove(subscriber))
        if not self.anns:
            return None
        d = subscriber.callRemote("announce_v2", set(self.anns.values()))
        d.addBoth(lambda _: None)
        return d

intro = Introducer()

class Commands(LineReceiver):
    delimiter = b"\n"
    def lineReceived(self, line):
        cmd, seed, ann = line.decode().split(" ", 2)
        intro.publish(sign(seed, json.loads(ann)))
        print("PUBLISHED", flush=True)

tub = Tub(certFile=certfile)
tub.startService()
tub.listenOn("tcp:%d:interface=127.0.0.1" % port)
tub.setLocation("tcp:127.0.0.1:%d" % port)
print(tub.registerReference(intro, "introducer"), flush=True)
stdio.StandardIO(Commands())
reactor.run()
`

// pySubscriber subscribes to the introducer FURL given as argument and
// prints "ANN <key> <seqnum> <nickname>" for every announcement, verified.
const pySubscriber = pyRemoteInterfaces + `
@implementer(RIIntroducerSubscriberClient_v2)
class Subscriber(Referenceable):
    def remote_announce_v2(self, announcements):
        for ann_t in announcements:
            ann, key = unsign(ann_t)
            print("ANN", key.decode(), ann["seqnum"], ann["nickname"], flush=True)

@defer.inlineCallbacks
def main():
    tub = Tub()
    tub.startService()
    ref = yield tub.getReference(sys.argv[1])
    v = yield ref.callRemote("get_version")
    print("VERSION", sorted(k.decode() for k in v), flush=True)
    info = {b"version": 0, b"nickname": "py", b"app-versions": [],
            b"my-version": "tahoe-lafs/1.20.0", b"oldest-supported": "1.0.0"}
    yield ref.callRemote("subscribe_v2", Subscriber(), b"storage", info)
    print("SUBSCRIBED", flush=True)

reactor.callWhenRunning(lambda: main().addErrback(lambda f: (print("ERROR", f, flush=True), reactor.stop())))
reactor.run()
`

// pyCacheReader reads an introducer cache with Tahoe's rules
// (allmydata.client._Client... IntroducerClient._load_announcements): a YAML
// list of dicts, each delivering (key_s, ann). It prints the JSON of the
// delivered pairs.
const pyCacheReader = `
import sys, json, yaml
with open(sys.argv[1]) as f:
    servers = yaml.safe_load(f)
if not isinstance(servers, list):
    print("ERROR not a list"); sys.exit(0)
out = []
for server_params in servers:
    if not isinstance(server_params, dict):
        continue
    out.append([server_params["key_s"].encode("utf-8").decode(), server_params["ann"]])
print(json.dumps(out))
`

// pyProc is a Python script with a stdin the test writes to.
type pyProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

func startPy(t *testing.T, script string, args ...string) *pyProc {
	t.Helper()
	py := pyfoolscap.Python(t)
	if out, err := exec.Command(py, "-c", "import nacl.signing, yaml").CombinedOutput(); err != nil {
		t.Fatalf("python3-nacl and python3-yaml are required (scripts/test.sh installs them): %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, py, append([]string{"-u", "-c", script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &pyProc{cmd: cmd, stdin: stdin, lines: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		cancel()
		if s := stderr.String(); s != "" && t.Failed() {
			t.Logf("python stderr:\n%s", s)
		}
	})
	return p
}

func (p *pyProc) stop() {
	p.stdin.Close()
	p.cmd.Process.Kill()
	<-p.done
}

// expect returns the next line that starts with prefix, skipping others.
func (p *pyProc) expect(t *testing.T, prefix string) string {
	t.Helper()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("python exited while waiting for %q", prefix)
			}
			if strings.HasPrefix(l, "ERROR") || strings.HasPrefix(l, "Traceback") {
				t.Fatalf("python: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timer.C:
			t.Fatalf("python printed no %q within 60s", prefix)
		}
	}
}

func pyPublish(t *testing.T, p *pyProc, s *grid.Server, seq int64) {
	t.Helper()
	ann, err := json.Marshal(s.Announcement(seq))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(p.stdin, "ANN "+hex.EncodeToString(s.Key.Seed())+" "+string(ann)+"\n"); err != nil {
		t.Fatal(err)
	}
	p.expect(t, "PUBLISHED")
}

// TestInteropPythonIntroducer subscribes to a Python introducer, receives
// the announcements it holds and the ones it publishes later, and
// subscribes again after the introducer restarts.
func TestInteropPythonIntroducer(t *testing.T) {
	g := startGrid(t, 3)
	tmp := t.TempDir()
	cert := filepath.Join(tmp, "introducer.pem")
	port := freePort(t)
	py := startPy(t, pyIntroducer, cert, port)
	furl := py.expect(t, "pb://")
	pyPublish(t, py, g.Servers[0], 1)
	pyPublish(t, py, g.Servers[1], 1)

	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"py": furl}}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1, Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if l := py.expect(t, "SUBSCRIBED"); l != "SUBSCRIBED ''" {
		t.Errorf("subscriber nickname: %s, want an empty one", l)
	}
	pyPublish(t, py, g.Servers[2], 1)
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	st := b.Introducers()[0]
	if !st.Subscribed || st.Version != "tahoe-lafs/1.20.0" || st.Announcements["accepted"] != 3 {
		t.Fatalf("introducer status %+v", st)
	}

	// Restart: same certificate, same port, announcements published again
	// (the Python introducer keeps nothing). The broker subscribes again;
	// what it gets back is duplicates, and one newer seqnum.
	py.stop()
	waitIntro(t, b, "the introducer connection to drop", func() bool { return !b.Introducers()[0].Connected })
	py = startPy(t, pyIntroducer, cert, port)
	if got := py.expect(t, "pb://"); got != furl {
		t.Fatalf("restarted introducer has FURL %s, want %s", got, furl)
	}
	pyPublish(t, py, g.Servers[0], 1)
	pyPublish(t, py, g.Servers[1], 2)
	b.TryNowIntroducer("py")
	py.expect(t, "SUBSCRIBED")
	waitIntros(t, b, "the second subscription", func(sts []messages.IntroducerStatus) bool {
		return sts[0].Subscribed && sts[0].Announcements["accepted"] == 4
	})
	if st := b.Introducers()[0]; st.Announcements["duplicate"] != 1 {
		t.Errorf("announcements after the restart: %v, want one duplicate", st.Announcements)
	}
	if n := connectedCount(b); n != 3 {
		t.Errorf("%d servers connected, want 3", n)
	}
}

// TestInteropPythonSubscriber subscribes a Python client, with Tahoe's
// interfaces, to the Go introducer: it gets the held announcements, then a
// pushed one, all verifying with PyNaCl.
func TestInteropPythonSubscriber(t *testing.T) {
	g := startGrid(t, 2)
	in := startIntroducer(t, introducerserver.Options{})
	publish(t, in, g.Servers[0], 7)
	py := startPy(t, pySubscriber, in.FURL)
	if l := py.expect(t, "VERSION"); !strings.Contains(l, "http://allmydata.org/tahoe/protocols/introducer/v2") {
		t.Errorf("version: %s", l)
	}
	if l := py.expect(t, "ANN"); l != "ANN "+g.Servers[0].ID+" 7 "+g.Servers[0].Nickname {
		t.Errorf("got %q", l)
	}
	py.expect(t, "SUBSCRIBED")
	publish(t, in, g.Servers[1], 3)
	if l := py.expect(t, "ANN"); l != "ANN "+g.Servers[1].ID+" 3 "+g.Servers[1].Nickname {
		t.Errorf("got %q", l)
	}
}

// TestInteropCacheReadByTahoeRules writes caches through discovery and
// reads them with Tahoe's loader rules in Python: the same (key_s, ann)
// pairs as tubfarm holds.
func TestInteropCacheReadByTahoeRules(t *testing.T) {
	g := startGrid(t, 3)
	in := startIntroducer(t, introducerserver.Options{})
	for i, s := range g.Servers {
		publish(t, in, s, int64(i+1))
	}
	// And one whose strings and numbers test the cache's quoting.
	tricky := g.Servers[0].Announcement(1)
	tricky["nickname"] = "yes: no \"q\" \\ #x\t\x7f\u0085\u2028\ufeff é 😀"
	tricky["x-values"] = []any{"null", "~", "1e3", 1.5, 1e300, int64(-7), true, nil, map[string]any{"- k": []any{}}}
	ts, err := config.Sign(hostileKey(t), tricky)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := in.Publish(ts); r != introducer.Accepted {
		t.Fatal(r, err)
	}
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"alpha": in.FURL}}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1})
	if err := b.WhenIntroducersAnswered(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	b.Close() // writes the cache
	path := config.CachePath(dir, "alpha")
	out, err := exec.Command(pyfoolscap.Python(t), "-c", pyCacheReader, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var got [][2]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	c, err := config.ReadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || len(c.Entries) != 4 {
		t.Fatalf("python read %d entries, tubfarm %d; want 4", len(got), len(c.Entries))
	}
	for i, e := range c.Entries {
		var key string
		json.Unmarshal(got[i][0], &key)
		var pyAnn map[string]any
		dec := json.NewDecoder(strings.NewReader(string(got[i][1])))
		dec.UseNumber()
		if err := dec.Decode(&pyAnn); err != nil {
			t.Fatal(err)
		}
		a, err := config.NewAnnouncement(pyAnn)
		if err != nil {
			t.Fatal(err)
		}
		if key != e.Key || !a.Equal(e.Announcement) {
			t.Errorf("entry %d: python (%s, %v), tubfarm (%s, %v)", i, key, pyAnn, e.Key, e.Announcement.Fields())
		}
	}
	ids := []string{g.Servers[0].ID, g.Servers[1].ID, g.Servers[2].ID, ts.Key}
	slices.Sort(ids)
	for i, e := range c.Entries {
		if e.Key != ids[i] || !e.Verified() {
			t.Errorf("entry %d: %s verified=%t", i, e.Key, e.Verified())
		}
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "!!") {
		t.Errorf("cache uses YAML tags:\n%s", data)
	}
}

// freePort returns a loopback port that was free a moment ago, for a
// Python introducer that must come back on the same port.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
