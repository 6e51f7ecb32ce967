// Package ha tests apmtel on Redis topologies that survive a node: a Redis
// Cluster running the whole pipeline, and a Sentinel-watched master that is
// killed mid-run. The servers are real, started by scripts/redis-ha.sh on
// loopback; the package runs beside systemtest, in parallel.
package ha
