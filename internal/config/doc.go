// Package config holds apmtel's configuration: one documented struct with
// defaults (Default), filled from APMTEL_* environment variables and then
// from command-line flags (flags win), and checked by Validate.
//
// Every option has exactly one environment variable and one flag, declared
// together in options.go, so the two can never drift apart and the README's
// table can be checked against the code (see TestREADMEListsEveryVariable).
package config
