// Package store keeps the state of telemetry runs in Redis: each run's
// metadata, the per-task records written by workers, the assembled
// snapshot, the bounded run history and each task's last good fragment.
//
// Every update that touches more than one key, or that must not race with
// another worker, is one Lua script (scripts.go), so a crash between two
// commands can never leave a run half-updated. Task results are keyed by
// task name and written once, never incremented, because asynq runs a job at
// least once.
package store
