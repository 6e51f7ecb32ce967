// Package sample writes synthetic APM data where APM Server would write it,
// so that the telemetry tasks have realistic data to query in the demo, the
// tests and the benchmarks. Generation is deterministic for a seed and
// streams: documents are produced per bulk chunk, so memory stays bounded
// however many are asked for.
package sample
