package tubfarm

import (
	"log/slog"
	"os"
	"time"

	"github.com/tubfarm/tubfarm/config"
)

// DefaultWatchInterval is how often servers.yaml is checked for changes when
// Options.WatchInterval is zero.
const DefaultWatchInterval = 2 * time.Second

// fileStamp is what the watch compares to notice an edit: an editor that
// writes a new file and renames it changes the inode; one that writes in
// place changes the modification time or the size.
type fileStamp struct {
	exists  bool
	modTime time.Time
	size    int64
	ino     uint64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, modTime: fi.ModTime(), size: fi.Size(), ino: inode(fi)}
}

// startWatch polls servers.yaml and reloads it when it changes. Polling
// rather than inotify keeps the library free of platform code and of a
// dependency, and a reload costs little when nothing changed: one stat.
func (b *Broker) startWatch() {
	interval := b.opts.WatchInterval
	if interval == 0 {
		interval = DefaultWatchInterval
	}
	path := config.ServersPath(b.node.Dir)
	b.watchStop = make(chan struct{})
	b.watchDone = make(chan struct{})
	last := stampOf(path)
	go func() {
		defer close(b.watchDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.watchStop:
				return
			case <-t.C:
			}
			now := stampOf(path)
			if now == last {
				continue
			}
			last = now
			err := b.Reload()
			if err != nil {
				b.log.Error("tubfarm: servers.yaml changed but cannot be used; keeping the running map",
					slog.String("path", path), slog.Any("error", err))
			} else {
				b.log.Info("tubfarm: servers.yaml reloaded", slog.String("path", path))
			}
			if b.opts.OnReload != nil {
				b.opts.OnReload(err)
			}
		}
	}()
}
