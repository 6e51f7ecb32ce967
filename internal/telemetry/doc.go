// Package telemetry is the catalogue of APM data-telemetry tasks: the
// queries Kibana's APM plugin runs (spec §2) and the code that turns their
// answers into fragments of the telemetry object.
//
// Each task lives in its own file and is listed once, explicitly, in
// registry.go, in Kibana's execution order. A task is a pure function of the
// source cluster: it takes an Env and returns a Fragment, never touching
// Redis, so the same code serves the distributed workers and `apmtel preview`.
package telemetry
