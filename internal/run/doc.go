// Package run owns a telemetry run: its states and their transitions, the
// per-task records and attempts, the upload state, the report, and every
// field name of a run's Redis hash. Nothing outside this package writes a
// run's state or names one of its fields; handlers, the CLI, the console and
// the metrics call the transitions and read the types defined here.
//
// A run moves
//
//	open ──close(complete|deadline)──▶ closed ──seal──▶ sealed
//	  └────────────cancel──────────────▶ cancelled
//
// Sealed and cancelled are terminal. Each transition is one Lua script
// (scripts.go), so a crash between two Redis commands never leaves a run
// half-changed, and every key a script touches carries the run's source hash
// tag, so the scripts run on Redis Cluster. Task results are keyed by task
// and written once, never incremented, because asynq delivers at least once.
package run
