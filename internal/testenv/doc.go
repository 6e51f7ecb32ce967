// Package testenv gives tests the real services started by
// scripts/services.sh: a Redis database of their own and the search engine.
//
// When a service's address is not in the environment the test is skipped,
// except under CI=true, where it fails: CI must never pass by skipping.
package testenv
