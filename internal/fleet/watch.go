package fleet

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/boundedfile"
)

// DefaultPollInterval is how often a Watcher looks at the clusters file:
// the file and the files it names are small, so reading them every few
// seconds costs nothing and sees every kind of change (see Watcher).
const DefaultPollInterval = 5 * time.Second

// Source hands out the current Set and the ones that follow. A Watcher is
// one; Static is the Source of a Set that never changes.
type Source interface {
	// Current returns the Set in force now.
	Current() Set
	// Subscribe returns a channel that receives every new Set (only the
	// newest when the reader is slow) and a function that ends the
	// subscription.
	Subscribe() (<-chan Set, func())
}

// Static returns a Source whose Set never changes (the single cluster of
// the APMTEL_SOURCE_* settings).
func Static(s Set) Source { return static{s} }

type static struct{ s Set }

func (s static) Current() Set { return s.s }
func (static) Subscribe() (<-chan Set, func()) {
	return make(chan Set), func() {}
}

// Watcher keeps the Set of a clusters file current.
//
// It polls: every interval it reads the file and stats the files the
// entries name (CA, secrets) and rebuilds the Set when that fingerprint
// changed; SIGHUP forces a look at once. Polling rather than fsnotify
// because the usual ways a file is replaced defeat a file watch: a
// Kubernetes ConfigMap or Secret volume swaps a "..data" symlink, editors
// and config-management tools write a new file and rename it, and a watch
// on the old inode then sees nothing; a watch on the directory sees events
// for unrelated files and would add a dependency. A poll sees a new content,
// a CA file that appeared or a rotated secret alike.
type Watcher struct {
	path string
	log  zerolog.Logger

	mu      sync.Mutex
	cur     Set
	lastErr error
	// refused is the fingerprint of the last refused file, so that a file
	// left broken is reported once, not at every poll.
	refused string
	nextID  int
	subs    map[int]chan Set
}

// NewWatcher loads path. A file refused at start is an error: a process
// does not start without its clusters.
func NewWatcher(path string, log zerolog.Logger) (*Watcher, error) {
	s, err := Load(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, log: log, cur: s, subs: map[int]chan Set{}}
	w.logSet(s)
	return w, nil
}

// Current returns the Set in force.
func (w *Watcher) Current() Set {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// Err returns why the file on disk was last refused, nil when the file in
// force is the one on disk.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Subscribe returns a channel receiving every new Set; a slow reader gets
// the newest one. The returned function ends the subscription.
func (w *Watcher) Subscribe() (<-chan Set, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := w.nextID
	w.nextID++
	ch := make(chan Set, 1)
	w.subs[id] = ch
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs, id)
	}
}

// Reload looks at the file now. It returns whether a new Set came into
// force and, when the file was refused, why (the previous Set stays).
func (w *Watcher) Reload() (bool, error) {
	b, err := boundedfile.Read(w.path)
	if err == nil {
		w.mu.Lock()
		var files []string
		for _, c := range w.cur.clusters {
			files = append(files, c.filesToWatch()...)
		}
		same := fingerprint(b, files) == w.cur.version
		if same {
			// The file in force is back (after a refused edit or a removal).
			w.refused, w.lastErr = "", nil
		}
		w.mu.Unlock()
		if same {
			return false, nil
		}
	}
	var s Set
	if err == nil {
		s, err = Parse(w.path, b)
	} else {
		_, err = Load(w.path)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		fp := err.Error()
		if fp != w.refused {
			w.log.Error().Str("file", w.path).Str("keeping_version", w.cur.version).
				Msgf("clusters file refused, keeping the previous clusters: %v", err)
		}
		w.refused, w.lastErr = fp, err
		return false, err
	}
	w.refused, w.lastErr = "", nil
	if s.version == w.cur.version {
		return false, nil
	}
	w.cur = s
	w.logSet(s)
	for _, ch := range w.subs {
		select {
		case <-ch:
		default:
		}
		ch <- s
	}
	return true, nil
}

// Run polls every interval (DefaultPollInterval when 0) and on SIGHUP until
// ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.log.Info().Str("file", w.path).Msg("SIGHUP: reloading the clusters file")
		case <-t.C:
		}
		_, _ = w.Reload()
	}
}

// logSet reports a Set coming into force: counts, and each disabled
// cluster with its reason. Paths only, never a secret.
func (w *Watcher) logSet(s Set) {
	enabled := len(s.Enabled())
	w.log.Info().Str("file", s.path).Str("version", s.version).Int("clusters", s.Len()).
		Int("enabled", enabled).Msg("clusters loaded")
	for _, c := range s.clusters {
		if !c.Enabled {
			w.log.Warn().Str("cluster", c.Name).Int("line", c.Line).Msgf("cluster disabled: %s", c.DisabledReason)
		}
	}
}
