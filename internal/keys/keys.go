package keys

import (
	"fmt"
	"regexp"
)

// DefaultPrefix is the namespace of every apmtel key.
const DefaultPrefix = "apmtel"

// DefaultSource names the source cluster of a deployment that collects from
// one cluster, which is every deployment today.
const DefaultSource = "default"

var (
	runIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	sourcePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// ValidRunID reports whether id may be used in a key and an asynq task id.
func ValidRunID(id string) error {
	if !runIDPattern.MatchString(id) {
		return fmt.Errorf("invalid run id %q: want 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit", id)
	}
	return nil
}

// ValidSource reports whether name may name a source cluster.
func ValidSource(name string) error {
	if !sourcePattern.MatchString(name) {
		return fmt.Errorf("invalid source name %q: want 1-63 characters of [a-z0-9._-], starting with a letter or digit", name)
	}
	return nil
}

// Space builds the keys of one source cluster under one prefix.
//
// Every key of a Space carries the hash tag "{<source>}", so all of them —
// runs, history, latest pointer, last good values, search slots — live in one
// Redis Cluster slot, and every Lua script of the run store touches one
// slot only. A later deployment collecting from many source clusters gets one
// Space per cluster: their keys spread over the cluster's slots while each
// cluster's scripts stay single-slot.
type Space struct {
	Prefix string
	Source string
}

// New returns the key space of the default source with the given prefix
// (DefaultPrefix when empty).
func New(prefix string) Space { return NewFor(prefix, "") }

// NewFor returns the key space of source (DefaultSource when empty).
func NewFor(prefix, source string) Space {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Space{Prefix: prefix, Source: SourceOrDefault(source)}
}

// SourceOrDefault is the one place an empty source name (a job payload or a
// run written before sources were named) means DefaultSource.
func SourceOrDefault(source string) string {
	if source == "" {
		return DefaultSource
	}
	return source
}

func (s Space) base() string { return s.Prefix + ":{" + s.Source + "}:" }

// RunPrefix is what every per-run key starts with; the trim script builds a
// run's keys from it, so it must match Run, Results, Pending, Attempts, Snapshot and Plugins.
func (s Space) RunPrefix() string { return s.base() + "run:" }

// Run is the hash holding a run's metadata (status, kind, created_at, deadline,
// tasks, indices, upload state…).
func (s Space) Run(runID string) string { return s.RunPrefix() + runID }

// Results is the hash of task name → JSON of the task's current record in one run.
func (s Space) Results(runID string) string { return s.RunPrefix() + runID + ":results" }

// Pending is the set of task names of a run that have no final outcome yet.
func (s Space) Pending(runID string) string { return s.RunPrefix() + runID + ":pending" }

// Attempts is the hash of "<task>#<attempt>" → JSON of one attempt (queued,
// started and finished times, worker, outcome): a run's timeline.
func (s Space) Attempts(runID string) string { return s.RunPrefix() + runID + ":attempts" }

// Snapshot is the string holding a run's assembled telemetry object.
func (s Space) Snapshot(runID string) string { return s.RunPrefix() + runID + ":snapshot" }

// Plugins is the string holding a sealed run's objects for the other
// plugins of the document (stack_stats.kibana.plugins.<name> besides apm:
// application_usage, ui_counters), a JSON object name → object; absent when
// the run had none.
func (s Space) Plugins(runID string) string { return s.RunPrefix() + runID + ":plugins" }

// Runs is the sorted set of run ids scored by creation time (ms), the bounded run history.
func (s Space) Runs() string { return s.base() + "runs" }

// Latest is the string "<created_ms>|<run id>" of the newest sealed full run.
func (s Space) Latest() string { return s.base() + "latest" }

// LastGood is the hash of task name → "<created_ms>|<JSON>" of the task's last
// successful fragment, used to keep a failed task's previous value (Kibana erases it).
func (s Space) LastGood() string { return s.base() + "lastgood" }

// Counters is the hash of the run and upload counters (run.Counters): each
// is incremented by the script that ends a run or an upload, so a count never
// depends on a run still being in the history when metrics are read.
func (s Space) Counters() string { return s.base() + "counters" }

// SearchSlots is the sorted set of leases of the cluster-wide search limiter:
// one per source cluster, since the cap protects that cluster.
func (s Space) SearchSlots() string { return s.base() + "searchslots" }

// SearchQueue is the sorted set of tickets waiting for a search slot, scored
// by arrival time (µs), so slots are handed out first come, first served.
func (s Space) SearchQueue() string { return s.base() + "searchslots:queue" }

// SearchWaiters is the sorted set of waiting tickets scored by their waiter
// lease expiry (ms): a waiter that stops polling (dead process) leaves the queue.
func (s Space) SearchWaiters() string { return s.base() + "searchslots:waiters" }

// SearchWake is the pub/sub channel on which a freed search slot is
// announced, so waiters take it at once rather than at their next poll.
// Pub/sub ignores the database number: deployments sharing one Redis server
// must differ in prefix or source (a stray message only costs a poll).
func (s Space) SearchWake() string { return s.base() + "searchslots:wake" }

// fleetTag is the hash tag of the keys every source cluster of a deployment
// shares. A source name starts with a letter or digit, so no source's tag
// (and no source's key) can be this one.
const fleetTag = "_fleet"

// Fleet builds the keys shared by every source cluster of a deployment under
// one prefix: the fleet-wide search cap. They carry their own hash tag, so
// they live in a Redis Cluster slot of their own, apart from every source's
// keys: a script touches either one source's keys or the fleet's, never both
// (the limiter takes the two caps in two scripts; see its package doc).
type Fleet struct {
	Prefix string
}

// NewFleet returns the fleet's key space under prefix (DefaultPrefix when empty).
func NewFleet(prefix string) Fleet {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Fleet{Prefix: prefix}
}

func (f Fleet) base() string { return f.Prefix + ":{" + fleetTag + "}:" }

// SearchSlots is the sorted set of leases of the fleet-wide search cap: one
// per request in flight against any source cluster, scored by lease expiry (ms).
func (f Fleet) SearchSlots() string { return f.base() + "searchslots" }

// SearchQueue is the sorted set of tickets whose own cluster has a slot for
// them and that wait for a fleet slot, scored by their place (µs).
func (f Fleet) SearchQueue() string { return f.base() + "searchslots:queue" }

// SearchWaiters is the sorted set of those tickets scored by their waiter
// lease expiry (ms).
func (f Fleet) SearchWaiters() string { return f.base() + "searchslots:waiters" }

// SearchWake is the pub/sub channel on which a freed fleet slot is announced.
func (f Fleet) SearchWake() string { return f.base() + "searchslots:wake" }

// Refused is the string marking that the source cluster refused what
// (a request parameter, e.g. "cluster_stats.include_remotes"): set with a
// TTL, so a cluster upgraded to accept it is asked again a day later.
func (s Space) Refused(what string) string { return s.base() + "refused:" + what }

// RunSuffixes are the suffixes of a run's keys after Run(id), "" for the run hash.
var RunSuffixes = []string{"", ":results", ":pending", ":attempts", ":snapshot", ":plugins"}

// RunKeys lists every key that belongs to one run.
func (s Space) RunKeys(runID string) []string {
	out := make([]string, len(RunSuffixes))
	for i, suf := range RunSuffixes {
		out[i] = s.Run(runID) + suf
	}
	return out
}
