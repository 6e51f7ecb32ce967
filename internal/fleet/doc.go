// Package fleet holds the set of source clusters one deployment collects
// from: the clusters file named by APMTEL_CLUSTERS_FILE, or, without it, the
// one cluster of the APMTEL_SOURCE_* settings.
//
// A Set is an immutable snapshot. A run takes the Set current at its start
// and keeps it to the end, so a reload never changes a run in flight; a
// Watcher re-reads the file (on change and on SIGHUP) and hands the next Set
// to its subscribers.
//
// Two kinds of problems are told apart, as Prometheus does with its config:
// a file that does not parse, has an unknown key, a missing or duplicate name
// or a name that breaks the rules of APMTEL_SOURCE_NAME is refused whole (one
// line naming file:line and the problem) and the previous Set stays; an entry
// that parses but cannot work (a missing CA or secret file, a bad URL)
// disables that cluster only, with the reason kept in the Set.
//
// The YAML library is go.yaml.in/yaml/v3, the YAML organisation's maintained
// continuation of gopkg.in/yaml.v3 (archived in 2025): its decoder refuses
// unknown keys (KnownFields) and reports errors with line numbers.
// sigs.k8s.io/yaml, already a dependency, converts YAML to JSON first and so
// loses the line of an unknown or mistyped key, which is what an operator
// needs to fix the file.
//
// Secrets are only file references (api_key_file, password_file): a
// SecretFile reads its file when it is used and again after it changes, so a
// rotated key is picked up without a reload or restart, and it never prints
// the secret (String, GoString and JSON show the path only).
package fleet
