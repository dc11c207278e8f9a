package tubfarm_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/storage"
)

// ExampleServer_Storage uploads a small immutable share to every storage
// server through the typed API and reads it back. The servers announce
// NURLs, so they are reached over HTTPS storage; "[client] force_foolscap
// = true" in tahoe.cfg would make the same code use Foolscap.
// docs/storage.md shows this code.
func ExampleServer_Storage() {
	dir, stop := exampleHTTPSNodeDir() // three servers on 127.0.0.1 that announce a FURL and a NURL
	defer stop()

	b, err := tubfarm.Open(dir, tubfarm.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WhenConnected(ctx, len(b.Servers())); err != nil {
		log.Fatal(err)
	}

	si := storage.Index{1, 2, 3} // in Tahoe, derived from the file's key
	lease := storage.LeaseSecrets{Renew: storage.RandomSecret(), Cancel: storage.RandomSecret()}
	data := []byte("one small share")
	for _, srv := range b.Servers() {
		st := srv.Storage()
		a, err := st.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0}, uint64(len(data)))
		if err != nil {
			log.Fatal(err)
		}
		w := a.Writers[0]
		if err := w.Write(ctx, 0, data); err != nil {
			log.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			log.Fatal(err)
		}
		readers, err := st.GetBuckets(ctx, si)
		if err != nil {
			log.Fatal(err)
		}
		got, err := readers[0].Read(ctx, 0, 100)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s over %s: read back %q (%v)\n", srv.Nickname(), st.Protocol(), got, bytes.Equal(got, data))
	}
	// Unordered output:
	// storage-1 over https: read back "one small share" (true)
	// storage-2 over https: read back "one small share" (true)
	// storage-3 over https: read back "one small share" (true)
}

func exampleHTTPSNodeDir() (string, func()) {
	g, err := grid.Start(context.Background(), 3, "storage", grid.Options{HTTPS: true})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tubfarm-example-")
	if err != nil {
		log.Fatal(err)
	}
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		log.Fatal(err)
	}
	return dir, func() { g.Close(); os.RemoveAll(dir) }
}
