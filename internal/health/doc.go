// Package health answers "is this process alive?" and "can it do its job?"
// over HTTP, and probes such endpoints for `apmtel healthcheck`.
//
// /healthz only says the process serves HTTP: it checks nothing and reveals
// nothing, so orchestrators may call it without credentials and restart the
// process when it stops answering. /readyz runs the process's checks (Redis
// reachable, a worker server connected...) and answers 503 with a short,
// fixed reason per failed check; the underlying error, which may name hosts
// and ports, goes to the log instead, once per change of state. Neither
// endpoint needs the monitor token, so a Kubernetes probe or a Docker
// healthcheck works without a secret in its definition.
package health
