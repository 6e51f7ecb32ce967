// Package logs builds apmtel's zerolog loggers. Component names are
// constants here so that a log search by component never misses a renamed one.
package logs
