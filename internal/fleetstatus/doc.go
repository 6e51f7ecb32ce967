// Package fleetstatus computes what `apmtel clusters [--json]` and the
// console's fleet page show: one row per configured cluster, from the
// cluster Set, each cluster's recent runs and its backoff state. It is a
// pure function of data the caller has read from Redis, so the command,
// the console and the tests share one answer to "how is each cluster
// doing" and none of them re-derives it. Reader reads that data (each
// cluster's runs in its own key space, its backoff state) for the console
// and the per-cluster metrics.
package fleetstatus
