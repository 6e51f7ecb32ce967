package keys

// Backoff is the hash holding the source's sick-cluster state
// (internal/backoff): consecutive failed runs, last error, backoff end and
// the run last counted. In the source's hash tag like every key of a Space.
func (s Space) Backoff() string { return s.base() + "backoff" }
