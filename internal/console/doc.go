// Package console is the operator console the monitor serves beside
// Asynqmon: runs as apmtel records them (not raw queue jobs), each run's
// tasks, attempts, workers and errors, a timeline of its attempts, the
// document its upload sends, the history of run and task durations, and a
// fleet's clusters (fleet.go): one row each, from fleetstatus.Rows.
//
// Pages are rendered on the server with html/template; the timeline and the
// charts are SVG drawn here, and the stylesheet is embedded, so the console
// needs no JavaScript, no chart library and no network beyond the monitor:
// it works offline and behind the monitor's own guard (webguard: token off
// loopback, read-only mode). It only ever reads: every route is a GET, and
// it reads runs through internal/run's Store.
package console
